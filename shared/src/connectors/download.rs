//! Attachments fetched under a connection. The credential goes only to the origins the vendor
//! serves files from under it; a redirect elsewhere (Zendesk's and Jira's signed file URLs) is
//! followed without it, as the vendors document, over HTTPS and never to a private, loopback or
//! link-local address. What such a host answers is never taken for the credential's fault, and
//! only its status is reported (an object store's error names its signing inputs). The body is
//! read up to the size cap and never logged; the call record shows a fixed path, since a file URL
//! names the file and can hold a token.

use std::net::IpAddr;

use reqwest::{RequestBuilder, Url};

use super::triage::Response;
use super::{ConnectorError, Triage};

/// What one download may cost, and where it may go.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    /// The largest file taken, in bytes; a bigger one is refused.
    pub max_bytes: usize,
    /// For the whole download, redirects included.
    pub timeout: std::time::Duration,
    /// Plain HTTP to loopback without the credential: the local stack's sandbox only
    /// (`DOCUMENT_LOOPBACK_URLS=allow`; in Lambda, loopback is the Runtime API).
    pub allow_loopback: bool,
}

/// How one vendor's files are fetched.
pub struct Fetch<'a> {
    /// The vendor's name, for the call records.
    pub vendor: &'static str,
    /// The vendor's triage, for what a trusted origin answers.
    pub rules: Triage,
    /// Origins (`https://example.zendesk.com`) the connection's credential may be sent to.
    pub trusted: &'a [String],
    /// Size, time and loopback limits for the download.
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
    let url = Url::parse(url)
        .map_err(|_| ConnectorError::permanent("the attachment's URL is not a URL"))?;
    let secs = f.limits.timeout.as_secs();
    tokio::time::timeout(f.limits.timeout, hops(http, url, f, authorize))
        .await
        .unwrap_or_else(|_| {
            Err(ConnectorError::Transient(format!(
                "the download took longer than {secs} s"
            )))
        })
}

async fn hops(
    http: &reqwest::Client,
    mut url: Url,
    f: &Fetch<'_>,
    authorize: impl Fn(RequestBuilder) -> RequestBuilder,
) -> Result<Vec<u8>, ConnectorError> {
    for _ in 0..=MAX_HOPS {
        let trusted = f.trusted.iter().any(|t| same_origin(t, &url));
        if !trusted && !fetchable_without_credentials(&url, f.limits.allow_loopback) {
            return Err(ConnectorError::permanent(format!(
                "will not fetch an attachment from {} over {}",
                url.host_str().unwrap_or("no host"),
                url.scheme()
            )));
        }
        let req = http.get(url.clone());
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
        let result = read(answer, f, trusted);
        call.finish(match &result {
            Ok(_) => "ok",
            Err(e) => e.outcome(),
        });
        return result;
    }
    Err(ConnectorError::permanent(format!(
        "more than {MAX_HOPS} redirects"
    )))
}

/// A final answer: the file, or why not.
fn read(
    answer: crate::calls::BytesAnswer,
    f: &Fetch<'_>,
    trusted: bool,
) -> Result<Vec<u8>, ConnectorError> {
    let content_type = answer
        .headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .trim_start()
        .to_owned();
    let status = answer.status.as_u16();
    if !trusted {
        // A signed URL's host holds no credential of ours: what it says is about the link.
        return match (answer.status.is_success(), answer.over) {
            (true, false) if !content_type.starts_with("text/html") => Ok(answer.bytes),
            (true, true) => Err(too_large(f.limits.max_bytes)),
            (true, false) => Err(ConnectorError::permanent(
                "the file's link answered with a web page, not the file",
            )),
            _ if status == 429 || status >= 500 => Err(ConnectorError::Transient(format!(
                "the file's link answered HTTP {status}"
            ))),
            _ => Err(ConnectorError::permanent(format!(
                "the file's link answered HTTP {status} (expired or revoked?)"
            ))),
        };
    }
    let body = || String::from_utf8_lossy(&answer.bytes).into_owned();
    if !answer.status.is_success() {
        let response = Response::from_parts(status, &answer.headers, body());
        let verdict = (f.rules)(&response).finish(&response, chrono::Utc::now());
        return Err(ConnectorError::from_verdict(verdict));
    }
    // An API error in a 200 (Slack's `{"ok": false, "error": "token_expired"}`) is read with the
    // vendor's rules, never as the file.
    if content_type.starts_with("application/json") && !answer.over {
        let response = Response::from_parts(status, &answer.headers, body());
        let verdict = (f.rules)(&response).finish(&response, chrono::Utc::now());
        if verdict.kind != super::triage::Kind::Ok {
            return Err(ConnectorError::from_verdict(verdict));
        }
    }
    // A file host that sends a web page instead of the file is asking someone to sign in
    // (Slack without the bot token, Zendesk's private attachments): the credential did not
    // count, and the page is not the document.
    if content_type.starts_with("text/html") {
        return Err(ConnectorError::Auth(
            "the file host answered with a web page, not the file (a sign-in page)".into(),
        ));
    }
    if answer.over {
        return Err(too_large(f.limits.max_bytes));
    }
    Ok(answer.bytes)
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

/// A signed file URL is fetched without credentials over HTTPS, never to an address inside the
/// network (loopback, private, link-local: the instance metadata, the Lambda Runtime API); plain
/// HTTP to loopback only when `allow_loopback` (the local sandbox).
fn fetchable_without_credentials(url: &Url, allow_loopback: bool) -> bool {
    let host = url.host_str().unwrap_or_default();
    let ip = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .ok();
    let loopback = host == "localhost" || ip.is_some_and(|ip| ip.is_loopback());
    if loopback {
        return allow_loopback && matches!(url.scheme(), "http" | "https");
    }
    let inside = ip.is_some_and(|ip| match ip {
        IpAddr::V4(v4) => {
            v4.is_private() || v4.is_link_local() || v4.is_unspecified() || v4.is_broadcast()
        }
        IpAddr::V6(v6) => {
            v6.is_unspecified()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    });
    url.scheme() == "https" && !inside
}

/// The origin of a connection's base URL, for [`Fetch::trusted`].
pub(crate) fn origin_of(base_url: &str) -> Option<String> {
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

    fn rules(r: &Response) -> super::super::triage::Draft {
        super::super::triage::by_status(r, "")
    }

    fn answer(status: u16, content_type: &str, body: &str) -> crate::calls::BytesAnswer {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("content-type", content_type.parse().unwrap());
        crate::calls::BytesAnswer {
            status: reqwest::StatusCode::from_u16(status).unwrap(),
            headers,
            bytes: body.as_bytes().to_vec(),
            over: false,
        }
    }

    #[test]
    fn a_signed_links_answer_never_blames_the_credential_nor_is_repeated() {
        let f = Fetch {
            vendor: "zendesk",
            rules,
            trusted: &[],
            limits: Limits {
                max_bytes: 1000,
                timeout: std::time::Duration::from_secs(1),
                allow_loopback: false,
            },
        };
        let s3 = "<Error><Code>SignatureDoesNotMatch</Code><AWSAccessKeyId>AKIAEXAMPLE</AWSAccessKeyId></Error>";
        let e = read(answer(403, "application/xml", s3), &f, false).unwrap_err();
        assert_eq!(
            e,
            ConnectorError::permanent("the file's link answered HTTP 403 (expired or revoked?)")
        );
        let e = read(answer(200, "text/html", "<html>sign in</html>"), &f, false).unwrap_err();
        assert!(matches!(e, ConnectorError::Permanent { .. }), "{e:?}");
        let e = read(answer(503, "text/plain", "busy"), &f, false).unwrap_err();
        assert!(e.is_retryable());
        // The vendor's own host: a sign-in page means the credential did not count.
        let e = read(answer(200, "text/html", "<html>sign in</html>"), &f, true).unwrap_err();
        assert!(matches!(e, ConnectorError::Auth(_)), "{e:?}");
        assert_eq!(
            read(answer(200, "application/pdf", "%PDF"), &f, false).unwrap(),
            b"%PDF"
        );
    }

    #[test]
    fn only_https_outside_the_network_without_credentials() {
        for (url, ok, local) in [
            ("https://files.example.com/f", true, true),
            ("http://127.0.0.1:9/f", false, true),
            (
                "http://localhost:9001/2018-06-01/runtime/invocation/next",
                false,
                true,
            ),
            ("https://169.254.169.254/latest/meta-data", false, false),
            ("http://169.254.169.254/latest/meta-data", false, false),
            ("https://10.0.0.7/f", false, false),
            ("https://[fd00::1]/f", false, false),
            ("http://files.example.com/f", false, false),
            ("file:///etc/passwd", false, false),
        ] {
            let u = Url::parse(url).unwrap();
            assert_eq!(fetchable_without_credentials(&u, false), ok, "{url}");
            assert_eq!(
                fetchable_without_credentials(&u, true),
                ok || local,
                "{url} (local)"
            );
        }
    }
}
