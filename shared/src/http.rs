//! The two HTTP clients a function builds, on one TLS stack (rustls on ring, over hyper 1):
//! reqwest for the vendors, and the AWS SDK's own.
//!
//! The AWS SDK's own default client brings aws-lc (0.5 MB in each arm64 function,
//! docs/performance.md). Here the SDK gets a client built with ring, and reqwest (compiled with
//! `rustls-no-provider`) finds ring installed as the process's provider before its first client
//! is built. Both trust the system's roots.

use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_http_client::Builder;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use std::time::Duration;

/// Make ring the process's rustls provider; reqwest reads it when a client is built. A provider
/// installed earlier (by a test harness) stays.
fn install() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The HTTPS client every AWS SDK client in a function uses (`aws_config::ConfigLoader::http_client`).
/// It names ring itself, so it needs no process-wide provider.
pub fn sdk_http_client() -> SharedHttpClient {
    Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// The HTTP client every connector shares: rustls, bounded timeouts, no system proxy.
pub fn http_client() -> reqwest::Client {
    install();
    reqwest::Client::builder()
        .redirect(same_origin_redirects())
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(10))
        .user_agent(concat!("switchyard/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("static reqwest configuration is valid")
}

/// Redirects are followed only within the origin that was called (at most 5): reqwest drops
/// `Authorization` on a cross-host hop, but not an API-key or session header, so such a hop is
/// never made with the connection's credentials; the 3xx is the answer.
fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let first = attempt.previous().first();
        let same = first.is_some_and(|f| {
            f.scheme() == attempt.url().scheme()
                && f.host_str() == attempt.url().host_str()
                && f.port_or_known_default() == attempt.url().port_or_known_default()
        });
        if !same {
            attempt.stop()
        } else if attempt.previous().len() > 5 {
            attempt.error("more than 5 redirects")
        } else {
            attempt.follow()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vendors_client_finds_ring_installed() {
        let _vendors = http_client();
        let installed = rustls::crypto::CryptoProvider::get_default().expect("a provider");
        // Each provider's random source prints as its own name: `Ring`, `AwsLcRs`.
        assert_eq!(format!("{:?}", installed.secure_random), "Ring");
    }
}
