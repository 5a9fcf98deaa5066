//! Twilio: `X-Twilio-Signature = base64(HMAC-SHA1(auth_token, url + sorted form params))`, the
//! params concatenated as key+value sorted by key. JSON bodies are signed over the URL alone, which
//! carries `bodySHA256` = hex SHA-256 of the body; that hash is checked too.

use std::collections::BTreeMap;

use base64::{engine::general_purpose::STANDARD, Engine};
use http::HeaderMap;
use secrecy::SecretString;
use sha2::{Digest, Sha256};

use crate::webhook::signature::{ct_eq, hmac_sha1, verify_any};
use crate::webhook::{
    header, opt_header, Inbound, NormalizeError, Normalized, SignedRequest, VerifyError,
};

pub(crate) const SIGNATURE_HEADER: &str = "x-twilio-signature";

fn is_form(headers: &HeaderMap) -> bool {
    opt_header(headers, "content-type")
        .is_none_or(|ct| ct.starts_with("application/x-www-form-urlencoded"))
}

/// Checks `X-Twilio-Signature` over the URL and sorted form parameters (a JSON body: the URL,
/// whose `bodySHA256` must match the body) against each of `secrets`, the auth tokens.
pub fn verify(req: &SignedRequest<'_>, secrets: &[SecretString]) -> Result<(), VerifyError> {
    let expected = STANDARD
        .decode(header(req.headers, SIGNATURE_HEADER)?.trim())
        .map_err(|_| VerifyError::MalformedHeader(SIGNATURE_HEADER))?;
    let mut signed = vec![req.url.to_owned()];
    if is_form(req.headers) {
        // Sorted by key, then value, as Twilio's own libraries do for repeated keys; a key
        // repeated with the same value is signed once by some of them (they sign the set of
        // values), so both readings are tried.
        let mut params: Vec<(String, String)> = form_urlencoded(req.body);
        params.sort();
        let mut once = params.clone();
        once.dedup();
        let readings = if once.len() < params.len() {
            vec![params, once]
        } else {
            vec![params]
        };
        signed = readings
            .into_iter()
            .map(|params| {
                let mut s = req.url.to_owned();
                for (k, v) in params {
                    s.push_str(&k);
                    s.push_str(&v);
                }
                s
            })
            .collect();
    } else {
        let query = req.url.split_once('?').map(|(_, q)| q).unwrap_or_default();
        let claimed = form_urlencoded(query.as_bytes())
            .into_iter()
            .find(|(k, _)| k == "bodySHA256")
            .map(|(_, v)| v)
            .ok_or(VerifyError::MissingHeader("bodySHA256 query parameter"))?;
        if !ct_eq(
            hex::encode(Sha256::digest(req.body)).as_bytes(),
            claimed.to_ascii_lowercase().as_bytes(),
        ) {
            return Err(VerifyError::Mismatch);
        }
    }
    // Twilio signs the URL as the webhook was configured, with or without the scheme's port;
    // its own validators try both (twilio-python's `RequestValidator.validate`), so do we.
    let (with, without) = port_variants(req.url);
    let candidates: Vec<String> = signed
        .iter()
        .flat_map(|s| {
            let rest = &s[req.url.len()..];
            [format!("{with}{rest}"), format!("{without}{rest}")]
        })
        .collect();
    verify_any(secrets, |key| {
        candidates
            .iter()
            .any(|s| ct_eq(&hmac_sha1(key, &[s.as_bytes()]), &expected))
    })
}

/// The URL with its port written out (`:443`, `:80` when it had none) and without any port.
fn port_variants(url: &str) -> (String, String) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_owned(), url.to_owned());
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let host_end = if authority.starts_with('[') {
        authority.find(']').map_or(authority.len(), |i| i + 1)
    } else {
        authority.find(':').unwrap_or(authority.len())
    };
    let (host, port) = authority.split_at(host_end);
    let default = if scheme.eq_ignore_ascii_case("https") {
        ":443"
    } else {
        ":80"
    };
    let port = if port.is_empty() { default } else { port };
    (
        format!("{scheme}://{host}{port}{tail}"),
        format!("{scheme}://{host}{tail}"),
    )
}

fn form_urlencoded(body: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body).unwrap_or_default()
}

/// Twilio posts form fields (`MessageSid`, `From`, `Body`, …). JSON bodies are kept as they are.
pub fn normalize(headers: &HeaderMap, body: &[u8]) -> Result<Inbound, NormalizeError> {
    let fields: BTreeMap<String, String> = if is_form(headers) {
        serde_urlencoded::from_bytes(body).map_err(|e| NormalizeError::NotForm(e.to_string()))?
    } else {
        let v: serde_json::Value = crate::webhook::parse_json(body)?;
        v.as_object()
            .ok_or(NormalizeError::MissingField("a JSON object"))?
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| v.to_string()),
                )
            })
            .collect()
    };
    let get = |k: &str| fields.get(k).filter(|v| !v.is_empty()).cloned();
    let (event_type, object_id) = if let Some(sid) = get("MessageSid").or_else(|| get("SmsSid")) {
        let status = get("MessageStatus")
            .or_else(|| get("SmsStatus"))
            .unwrap_or_else(|| "received".into());
        (format!("twilio:message.{status}"), sid)
    } else if let Some(sid) = get("CallSid") {
        (
            format!(
                "twilio:call.{}",
                get("CallStatus").unwrap_or_else(|| "unknown".into())
            ),
            sid,
        )
    } else {
        return Err(NormalizeError::MissingField("MessageSid or CallSid"));
    };
    // Twilio's idempotency token is stable across its retries of one callback.
    let delivery_id = opt_header(headers, "i-twilio-idempotency-token")
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{event_type}:{object_id}"));
    let raw = serde_json::to_value(&fields).unwrap_or_default();
    Ok(Inbound::event(Normalized {
        event_type,
        delivery_id: Some(delivery_id),
        object_id: Some(object_id),
        subject: None,
        text: get("Body"),
        requester: get("From"),
        occurred_at: None,
        links: Vec::new(),
        unknown_fields: Vec::new(),
        attachments: Vec::new(),
        raw: raw.into(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Twilio's "Webhooks security" example.
    const TOKEN: &str = "12345";
    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
    const FORM: &str = "CallSid=CA1234567890ABCDE&Caller=%2B12349013030&Digits=1234&From=%2B12349013030&To=%2B18005551212";
    const SIG: &str = "0/KCTR6DLpKmkAf8muzZqo1nDgQ=";

    fn headers(sig: &str, content_type: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(SIGNATURE_HEADER, sig.parse().unwrap());
        h.insert("content-type", content_type.parse().unwrap());
        h
    }

    #[test]
    fn vendor_example_tampered_wrong_token() {
        let h = headers(SIG, "application/x-www-form-urlencoded");
        let secrets = [SecretString::from(TOKEN)];
        let req = SignedRequest {
            method: "POST",
            url: URL,
            headers: &h,
            body: FORM.as_bytes(),
        };
        assert_eq!(verify(&req, &secrets), Ok(()));
        let tampered = FORM.replace("Digits=1234", "Digits=1235");
        let req2 = SignedRequest {
            body: tampered.as_bytes(),
            ..req
        };
        assert_eq!(verify(&req2, &secrets), Err(VerifyError::Mismatch));
        let wrong = [SecretString::from("54321")];
        assert_eq!(verify(&req, &wrong), Err(VerifyError::Mismatch));
    }

    /// twilio-python 9.x's own test vectors (tests/unit/test_request_validator.py): the URL is
    /// signed with or without its port, and either verifies.
    #[test]
    fn the_helper_librarys_port_variants_verify() {
        let secrets = [SecretString::from(TOKEN)];
        let form = "CallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digits=1234&From=%2B14158675309&To=%2B18005551212";
        let cases = [
            // (URL the request reached, signature the sender made)
            (
                "https://mycompany.com/myapp.php?foo=1&bar=2",
                "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
            ),
            (
                "https://mycompany.com:1234/myapp.php?foo=1&bar=2",
                "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
            ),
            (
                "https://mycompany.com/myapp.php?foo=1&bar=2",
                "kvajT1Ptam85bY51eRf/AJRuM3w=",
            ),
            (
                "http://mycompany.com/myapp.php?foo=1&bar=2",
                "0ZXoZLH/DfblKGATFgpif+LLRf4=",
            ),
            (
                "http://mycompany.com:1234/myapp.php?foo=1&bar=2",
                "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=",
            ),
        ];
        for (url, sig) in cases {
            let h = headers(sig, "application/x-www-form-urlencoded");
            let req = SignedRequest {
                method: "POST",
                url,
                headers: &h,
                body: form.as_bytes(),
            };
            assert_eq!(verify(&req, &secrets), Ok(()), "{url} {sig}");
            let other = url.replace("myapp", "yourapp");
            let req = SignedRequest { url: &other, ..req };
            assert_eq!(
                verify(&req, &secrets),
                Err(VerifyError::Mismatch),
                "{other}"
            );
        }
        // A JSON body, signed over the URL that carries its hash.
        let body = r#"{"property": "value", "boolean": true}"#;
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";
        let h = headers("a9nBmqA0ju/hNViExpshrM61xv4=", "application/json");
        let req = SignedRequest {
            method: "POST",
            url,
            headers: &h,
            body: body.as_bytes(),
        };
        assert_eq!(verify(&req, &secrets), Ok(()));
    }

    /// A key repeated with the same value: signed with the value once (the set of values, as
    /// twilio-python's validator builds it) or twice (every value) — both verify; a changed
    /// value does not.
    #[test]
    fn a_key_repeated_with_the_same_value_verifies_as_the_libraries_sign_it() {
        let body = "CallSid=CA1&Digits=1234&Digits=1234";
        let sign = |s: &str| STANDARD.encode(hmac_sha1(TOKEN.as_bytes(), &[s.as_bytes()]));
        for signed in [
            format!("{URL}CallSidCA1Digits1234"),
            format!("{URL}CallSidCA1Digits1234Digits1234"),
        ] {
            let h = headers(&sign(&signed), "application/x-www-form-urlencoded");
            let req = SignedRequest {
                method: "POST",
                url: URL,
                headers: &h,
                body: body.as_bytes(),
            };
            assert_eq!(
                verify(&req, &[SecretString::from(TOKEN)]),
                Ok(()),
                "{signed}"
            );
        }
        let h = headers(
            &sign(&format!("{URL}CallSidCA1Digits1234")),
            "application/x-www-form-urlencoded",
        );
        let req = SignedRequest {
            method: "POST",
            url: URL,
            headers: &h,
            body: b"CallSid=CA1&Digits=1234&Digits=9999",
        };
        assert_eq!(
            verify(&req, &[SecretString::from(TOKEN)]),
            Err(VerifyError::Mismatch)
        );
    }

    #[test]
    fn json_body_is_checked_through_body_sha256() {
        let body = br#"{"MessageSid":"SM1","Body":"hi"}"#;
        let url = format!(
            "https://mycompany.com/hook?bodySHA256={}",
            hex::encode(Sha256::digest(body))
        );
        let sig = STANDARD.encode(hmac_sha1(TOKEN.as_bytes(), &[url.as_bytes()]));
        let h = headers(&sig, "application/json");
        let secrets = [SecretString::from(TOKEN)];
        let req = SignedRequest {
            method: "POST",
            url: &url,
            headers: &h,
            body,
        };
        assert_eq!(verify(&req, &secrets), Ok(()));
        let req2 = SignedRequest {
            body: br#"{"MessageSid":"SM1","Body":"ho"}"#,
            ..req
        };
        assert_eq!(verify(&req2, &secrets), Err(VerifyError::Mismatch));
    }

    #[test]
    fn sms_normalizes() {
        let h = headers(SIG, "application/x-www-form-urlencoded");
        let body = b"MessageSid=SM123&AccountSid=AC1&From=%2B15551234567&To=%2B15557654321&Body=My+order+never+arrived&NumMedia=0";
        let n = normalize(&h, body).unwrap().into_events().remove(0);
        assert_eq!(n.event_type, "twilio:message.received");
        assert_eq!(n.text.as_deref(), Some("My order never arrived"));
        assert_eq!(n.requester.as_deref(), Some("+15551234567"));
    }
}
