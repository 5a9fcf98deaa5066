//! What can be known about a post-only connection (Teams, a signed webhook) without posting:
//! its URL's shape, that its host resolves, and that a TLS connection to it succeeds. Whether
//! the receiver would still accept a post is only known when one is made. Findings name the host,
//! never the URL: for these connections the URL is the credential.

use super::{Finding, FindingKind, Severity};

/// Check `url` for `connector`; `hosts` lists the host suffixes its vendor uses (empty: any).
pub async fn check(
    http: &reqwest::Client,
    connector: &str,
    url: &str,
    hosts: &[&str],
) -> Vec<Finding> {
    let finding = |severity, path: &str, detail: String| Finding {
        connector: connector.to_owned(),
        object: "configuration".into(),
        kind: FindingKind::Configuration,
        severity,
        path: path.to_owned(),
        detail,
        example: None,
        routes: Vec::new(),
    };
    let Ok(parsed) = reqwest::Url::parse(url.trim()) else {
        return vec![finding(
            Severity::Breaking,
            "url",
            "the stored URL is not a URL".into(),
        )];
    };
    let Some(host) = parsed.host_str().map(str::to_owned) else {
        return vec![finding(
            Severity::Breaking,
            "url",
            "the stored URL has no host".into(),
        )];
    };
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    let mut out = Vec::new();
    if parsed.scheme() != "https" && !loopback {
        out.push(finding(
            Severity::Breaking,
            "url.scheme",
            format!("the URL to {host} is not https: posts would travel in clear text"),
        ));
    }
    let host_lc = host.to_ascii_lowercase();
    if !loopback && !hosts.is_empty() && !hosts.iter().any(|h| host_lc.ends_with(h)) {
        out.push(finding(
            Severity::Warning,
            "url.host",
            format!(
                "{host} is not a host {connector} webhooks live on ({})",
                hosts.join(", ")
            ),
        ));
    }
    let port = parsed.port_or_known_default().unwrap_or(443);
    let resolved = tokio::net::lookup_host((host.as_str(), port))
        .await
        .is_ok_and(|mut addrs| addrs.next().is_some());
    if !resolved {
        out.push(finding(
            Severity::Breaking,
            "dns",
            format!("{host} does not resolve"),
        ));
        return out;
    }
    // The host's root, not the webhook: a TLS handshake and any HTTP answer prove reachability.
    let root = format!("{}://{host}:{port}/", parsed.scheme());
    if let Err(e) = http.head(&root).send().await {
        if e.is_connect() || e.is_timeout() {
            out.push(finding(
                Severity::Breaking,
                "reachability",
                format!(
                    "{host}:{port} did not accept a {} connection",
                    parsed.scheme()
                ),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shape_and_reachability_without_posting() {
        let http = crate::http::http_client();
        let paths = |f: Vec<Finding>| -> Vec<(String, Severity)> {
            f.into_iter().map(|f| (f.path, f.severity)).collect()
        };
        assert_eq!(
            paths(check(&http, "teams", "not a url", &[]).await),
            vec![("url".into(), Severity::Breaking)]
        );
        // Nothing listens on the discard port of loopback.
        assert_eq!(
            paths(check(&http, "webhook", "http://127.0.0.1:9/hooks", &[]).await),
            vec![("reachability".into(), Severity::Breaking)]
        );
        let f = check(
            &http,
            "teams",
            "http://teams.invalid/workflows/x?sig=SECRET",
            &[".logic.azure.com"],
        )
        .await;
        assert_eq!(
            paths(f.clone()),
            vec![
                ("url.scheme".into(), Severity::Breaking),
                ("url.host".into(), Severity::Warning),
                ("dns".into(), Severity::Breaking)
            ]
        );
        assert!(f.iter().all(|f| !f.detail.contains("SECRET")), "{f:?}");
    }
}
