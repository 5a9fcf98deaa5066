//! Attachments fetched under a connection. The credential goes only to the origins the vendor
//! serves files from under it; a redirect elsewhere (Zendesk's and Jira's signed file URLs) is
//! followed without it, as the vendors document. The body is read up to the size cap and never
//! logged; the call record shows a fixed path, since a file URL names the file and can hold a
//! token.

use reqwest::{RequestBuilder, Url};

use super::triage::Response;
use super::{ConnectorError, Triage};

/// What one download may cost.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    pub max_bytes: usize,
    /// For the whole download, each redirect's request included.
    pub timeout: std::time::Duration,
}

/// How one vendor's files are fetched.
pub struct Fetch<'a> {
    pub vendor: &'static str,
    pub rules: Triage,
    /// Origins (`https://example.zendesk.com`) the connection's credential may be sent to.
    pub trusted: &'a [String],
    pub limits: Limits,
}

/// Redirects followed in all, credentialed or not.
const MAX_HOPS: usize = 3;

/// The bytes at `url`: with `authorize`'s credential on trusted origins, without it elsewhere.
pub async fn download(
    http: &reqwest::Client,
    url: &str,
    f: &Fetch<'_>,
    authorize: impl Fn(RequestBuilder) -> RequestBuilder,
) -> Result<Vec<u8>, ConnectorError> {
    let mut url = Url::parse(url)
        .map_err(|_| ConnectorError::permanent("the attachment's URL is not a URL"))?;
    for _ in 0..=MAX_HOPS {
        let trusted = f.trusted.iter().any(|t| same_origin(t, &url));
        if !trusted && !fetchable_without_credentials(&url) {
            return Err(ConnectorError::permanent(format!(
                "will not fetch an attachment from {} over {}",
                url.host_str().unwrap_or("no host"),
                url.scheme()
            )));
        }
        let req = http.get(url.clone()).timeout(f.limits.timeout);
        let req = if trusted { authorize(req) } else { req };
        let path = if trusted {
            "/attachment"
        } else {
            "/attachment (signed URL)"
        };
        let (call, answer) =
            crate::calls::send_bytes(f.vendor, req, path, f.limits.max_bytes).await;
        let answer = match answer {
            Ok(a) => a,
            Err(e) => {
                let e = ConnectorError::from_reqwest(e, false);
                call.finish(e.outcome());
                return Err(e);
            }
        };
        if answer.status.is_redirection() {
            let next = answer
                .headers
                .get(reqwest::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .and_then(|l| url.join(l).ok());
            call.finish("ok");
            match next {
                Some(next) => {
                    url = next;
                    continue;
                }
                None => return Err(ConnectorError::permanent("a redirect without a Location")),
            }
        }
        if answer.status.is_success() {
            // A file host that sends a web page instead of the file is asking someone to sign in
            // (Slack without the bot token, Zendesk's private attachments): the credential did not
            // count, and the page is not the document.
            let content_type = answer
                .headers
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .trim_start()
                .to_owned();
            // An API error in a 200 (Slack's `{"ok": false, "error": "token_expired"}`) is read
            // with the vendor's rules, never as the file.
            if content_type.starts_with("application/json") && !answer.over {
                let body = String::from_utf8_lossy(&answer.bytes).into_owned();
                let response = Response::from_parts(answer.status.as_u16(), &answer.headers, body);
                let verdict = (f.rules)(&response).finish(&response, chrono::Utc::now());
                if verdict.kind != super::triage::Kind::Ok {
                    let e = ConnectorError::from_verdict(verdict);
                    call.finish(e.outcome());
                    return Err(e);
                }
            }
            if content_type.starts_with("text/html") {
                call.finish("auth");
                return Err(ConnectorError::Auth(
                    "the file host answered with a web page, not the file (a sign-in page)".into(),
                ));
            }
            if answer.over {
                call.finish("too_large");
                return Err(too_large(f.limits.max_bytes));
            }
            call.finish("ok");
            return Ok(answer.bytes);
        }
        let body = String::from_utf8_lossy(&answer.bytes).into_owned();
        let response = Response::from_parts(answer.status.as_u16(), &answer.headers, body);
        let verdict = (f.rules)(&response).finish(&response, chrono::Utc::now());
        let e = ConnectorError::from_verdict(verdict);
        call.finish(e.outcome());
        return Err(e);
    }
    Err(ConnectorError::permanent(format!(
        "more than {MAX_HOPS} redirects"
    )))
}

/// What a file over the cap is refused with.
pub fn too_large(max_bytes: usize) -> ConnectorError {
    ConnectorError::permanent(format!("larger than the {max_bytes}-byte limit"))
}

/// `origin` (`scheme://host[:port]`) is `url`'s.
fn same_origin(origin: &str, url: &Url) -> bool {
    Url::parse(origin).is_ok_and(|o| {
        o.scheme() == url.scheme()
            && o.host_str() == url.host_str()
            && o.port_or_known_default() == url.port_or_known_default()
    })
}

/// A signed file URL is fetched without credentials over HTTPS; plain HTTP only on loopback (the
/// local sandbox).
fn fetchable_without_credentials(url: &Url) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]")),
        _ => false,
    }
}

/// The origin of a connection's base URL, for [`Fetch::trusted`].
pub fn origin_of(base_url: &str) -> Option<String> {
    let u = Url::parse(base_url).ok()?;
    Some(u.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_compare_by_scheme_host_and_port() {
        let u =
            Url::parse("https://example.zendesk.com/attachments/token/abc/?name=a.pdf").unwrap();
        assert!(same_origin("https://example.zendesk.com", &u));
        assert!(same_origin("https://example.zendesk.com:443", &u));
        assert!(!same_origin("http://example.zendesk.com", &u));
        assert!(!same_origin("https://evil.example.com", &u));
        assert_eq!(
            origin_of("https://example.zendesk.com/api/v2").as_deref(),
            Some("https://example.zendesk.com")
        );
    }

    #[test]
    fn only_https_or_loopback_without_credentials() {
        for (url, ok) in [
            ("https://files.example.com/f", true),
            ("http://127.0.0.1:9/f", true),
            ("http://169.254.169.254/latest/meta-data", false),
            ("http://files.example.com/f", false),
            ("file:///etc/passwd", false),
        ] {
            assert_eq!(
                fetchable_without_credentials(&Url::parse(url).unwrap()),
                ok,
                "{url}"
            );
        }
    }
}
