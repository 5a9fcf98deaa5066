//! The clients a function builds speak TLS on ring (`switchyard::http`), and verify what they
//! are shown. The local stack is plain HTTP, so this is the one place the deployed TLS path runs
//! before AWS: a local server whose certificate is trusted only through the system's store
//! (`SSL_CERT_FILE`), as a deployed function trusts AWS's and the vendors'.

use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A TLS server on loopback for `localhost`, answering every request `200 {}`; it records each
/// request line it read.
async fn server(cert: &rcgen::Certificate, key: &rcgen::KeyPair) -> (u16, Arc<Mutex<Vec<String>>>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let (acceptor, log) = (acceptor.clone(), log.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return; // the client refused the certificate
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&head);
                log.lock()
                    .unwrap()
                    .push(text.lines().next().unwrap_or("").to_owned());
                let answer = "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\n\
                              content-length: 2\r\nconnection: close\r\n\r\n{}";
                let _ = tls.write_all(answer.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (port, seen)
}

/// An SQS client as `AwsClients::from_env` builds one, pointed at `https://localhost:{port}`.
async fn sqs_at(port: u16) -> aws_sdk_sqs::Client {
    let config = switchyard::aws::config_loader()
        .endpoint_url(format!("https://localhost:{port}"))
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "a", "b", None, None, "test",
        ))
        .load()
        .await;
    aws_sdk_sqs::Client::new(&config)
}

fn certificate() -> (rcgen::Certificate, rcgen::KeyPair) {
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    (params.self_signed(&key).unwrap(), key)
}

#[tokio::test]
async fn the_sdk_and_vendor_clients_complete_a_verified_handshake_on_ring() {
    let (trusted, trusted_key) = certificate();
    let (untrusted, untrusted_key) = certificate();
    let roots = std::env::temp_dir().join(format!("switchyard-tls-{}.pem", std::process::id()));
    std::fs::write(&roots, trusted.pem()).unwrap();
    // Before any client is built (each reads the store then); this binary holds one test.
    std::env::set_var("SSL_CERT_FILE", &roots);
    let (port, seen) = server(&trusted, &trusted_key).await;

    // The vendors' client.
    let http = switchyard::http::http_client();
    let answer = http
        .get(format!("https://localhost:{port}/ping"))
        .send()
        .await
        .expect("a handshake on ring with a trusted certificate");
    assert_eq!(answer.status(), 200);

    // The SDK's client.
    let listed = sqs_at(port).await.list_queues().send().await;
    assert!(listed.is_ok(), "{listed:?}");
    assert_eq!(
        *seen.lock().unwrap(),
        ["GET /ping HTTP/1.1", "POST / HTTP/1.1"]
    );

    // Verification is on: a certificate the store does not hold is refused by both.
    let (other, _) = server(&untrusted, &untrusted_key).await;
    let refused = http
        .get(format!("https://localhost:{other}/ping"))
        .send()
        .await;
    assert!(refused.is_err(), "an untrusted certificate was accepted");
    let refused = sqs_at(other).await.list_queues().send().await;
    assert!(refused.is_err(), "an untrusted certificate was accepted");
    let _ = std::fs::remove_file(roots);
}
