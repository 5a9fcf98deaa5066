//! The CLI's checking-by-hand commands: `parse-date`, `webhook verify`, `webhook normalize`,
//! `connector triage`.
//! Each returns the process exit code.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use http::{HeaderMap, HeaderName, HeaderValue};
use secrecy::SecretString;
use serde::Deserialize;
use switchyard::event::Source;
use switchyard::vendors::inbound::{self, Scheme};
use switchyard::webhook::{self, Inbound, SignedRequest};

/// `switchyard parse-date INPUT`: the instant as RFC 3339 UTC with milliseconds, or exit 1.
pub fn parse_date(input: &str) -> i32 {
    match switchyard::dates::parse(input) {
        Ok(t) => {
            println!("{}", switchyard::dates::format(&t));
            0
        }
        Err(e) => {
            eprintln!("parse-date: {e}");
            1
        }
    }
}

/// A recorded request to check by hand.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub scheme: String,
    pub secret: String,
    #[serde(default = "post")]
    pub method: String,
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub body: String,
    /// Unix time in seconds (may be fractional); without it only the signature is checked.
    #[serde(default)]
    pub now: Option<f64>,
}

fn post() -> String {
    "POST".into()
}

/// `switchyard webhook verify CASE.json`: 0 valid, 1 invalid, 2 unusable case file.
pub fn webhook_verify(path: &Path) -> i32 {
    let case: Case = match std::fs::read_to_string(path)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("unusable case file {}: {e}", path.display());
            return 2;
        }
    };
    match check_case(&case) {
        Ok(Ok(())) => {
            println!("valid");
            0
        }
        Ok(Err(reason)) => {
            println!("invalid: {reason}");
            1
        }
        Err(unusable) => {
            eprintln!("unusable case file {}: {unusable}", path.display());
            2
        }
    }
}

/// `Err` when the case itself cannot be used; `Ok(Err)` when the request is invalid.
pub fn check_case(case: &Case) -> Result<Result<(), webhook::VerifyError>, String> {
    let names: Vec<&str> = Scheme::ALL.iter().map(|(n, _)| *n).collect();
    let scheme = Scheme::parse(&case.scheme).ok_or_else(|| {
        format!(
            "unknown scheme {:?}; use one of {}",
            case.scheme,
            names.join(", ")
        )
    })?;
    let headers = header_map(case.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    let now = match case.now {
        Some(secs) if secs.is_finite() => Some(
            DateTime::<Utc>::from_timestamp_millis((secs * 1000.0).round() as i64)
                .ok_or("now is out of range")?,
        ),
        Some(_) => return Err("now must be a number of seconds".into()),
        None => None,
    };
    // A path-only URL is completed with the Host header, as the sender saw it.
    let url = match (
        case.url.starts_with('/'),
        headers.get("host").and_then(|h| h.to_str().ok()),
    ) {
        (true, Some(host)) => format!("https://{host}{}", case.url),
        _ => case.url.clone(),
    };
    let req = SignedRequest {
        method: &case.method,
        url: &url,
        headers: &headers,
        body: case.body.as_bytes(),
    };
    Ok(scheme.verify(&req, &[SecretString::from(case.secret.clone())], now))
}

fn header_map<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::new();
    for (k, v) in pairs {
        let name = HeaderName::from_bytes(k.trim().as_bytes())
            .map_err(|_| format!("bad header name {k:?}"))?;
        let value =
            HeaderValue::from_str(v.trim()).map_err(|_| format!("bad value for header {k}"))?;
        headers.append(name, value);
    }
    Ok(headers)
}

/// `switchyard webhook normalize --source S FILE [--header 'Name: value']…`: the canonical
/// event(s) as JSON, or exit 1 with what was wrong.
pub fn webhook_normalize(source: &str, path: &Path, headers: &[String]) -> i32 {
    let Some(source) = Source::parse(source) else {
        let names: Vec<&str> = Source::ALL.iter().map(|s| s.as_str()).collect();
        eprintln!("unknown source {source:?}; use one of {}", names.join(", "));
        return 2;
    };
    let body = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("cannot read {}: {e}", path.display());
            return 2;
        }
    };
    let pairs = headers.iter().filter_map(|h| h.split_once(':'));
    let headers = match header_map(pairs) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    match inbound::normalize(source, &headers, &body) {
        Ok(Inbound::Handshake(reply)) => {
            println!(
                "{{\"handshake\": {}}}",
                serde_json::to_string(&reply.body).unwrap_or_default()
            );
            0
        }
        Ok(Inbound::Events { events, .. }) => {
            let out = if events.len() == 1 {
                serde_json::to_string_pretty(&events[0])
            } else {
                serde_json::to_string_pretty(&events)
            };
            println!("{}", out.unwrap_or_default());
            0
        }
        Err(e) => {
            eprintln!("{source} payload not understood: {e}");
            1
        }
    }
}

/// `switchyard document inspect FILE [--json]`: what the file is, by the same inspection classify
/// runs on attachments, under the default limits. Exit 0 whatever the file is; 2 if it cannot be
/// read from disk.
pub fn document_inspect(path: &Path, json: bool) -> i32 {
    use switchyard::documents::{inspect, Limits};
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("cannot read {}: {e}", path.display());
            return 2;
        }
    };
    let i = inspect(&bytes, &Limits::default());
    if json {
        println!("{}", serde_json::to_string(&i).unwrap_or_default());
        return 0;
    }
    let mut line = format!("{}: {}", path.display(), i.kind.as_str());
    if let Some(mime) = i.mime {
        line.push_str(&format!(", {mime}"));
    }
    if let Some(pages) = i.pages {
        line.push_str(&format!(", {pages} page(s)"));
    }
    line.push_str(&format!(", {} characters of text", i.text_chars));
    if let Some(language) = i.language {
        line.push_str(&format!(", language {language}"));
    }
    if let Some(reason) = &i.reason {
        line.push_str(&format!(" ({reason})"));
    }
    println!("{line}");
    0
}

/// Labelled rows, or the exit code (2) after saying why they cannot be read.
/// A recorded vendor response for `connector triage`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordedResponse {
    pub status: u16,
    #[serde(default)]
    pub headers: ResponseHeaders,
    #[serde(default)]
    pub body: String,
}

/// Headers as `{"Name": "value"}` or `[["Name", "value"], …]` (the list keeps repeats).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum ResponseHeaders {
    Map(BTreeMap<String, String>),
    Pairs(Vec<(String, String)>),
}

impl Default for ResponseHeaders {
    fn default() -> Self {
        ResponseHeaders::Pairs(Vec::new())
    }
}

/// `switchyard connector triage --vendor V RESPONSE.json [--now S]`: one JSON line; exit 0, or 2
/// when the vendor or the file is unusable.
/// `switchyard connector check`: 0 when the description is valid (and the preview rendered),
/// 1 when it is not (the error names the file and line), 2 when a file cannot be read.
pub fn connector_check(path: &Path, event: Option<&Path>, base_url: &str) -> i32 {
    use switchyard::connectors::declared;
    let read = |p: &Path| std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
    let text = match read(path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("connector check: {e}");
            return 2;
        }
    };
    let file: &'static str = Box::leak(path.display().to_string().into_boxed_str());
    let built_in = switchyard::vendors::BUILT_IN.map(|v| v.name);
    let described = match declared::load(&[(file, &text)], &built_in) {
        Ok(mut d) => &*Box::leak(Box::new(d.remove(0))),
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    println!("{}", declared::summary(described));
    let Some(event_path) = event else {
        return 0;
    };
    let shown = read(event_path).and_then(|t| {
        let v: serde_json::Value = serde_json::from_str(&t)
            .map_err(|e| format!("{}: not JSON: {e}", event_path.display()))?;
        let routing = switchyard::routing::RoutingConfig::from_env().map_err(|e| e.to_string())?;
        declared::preview::preview_input(described, &routing, v, base_url)
            .map_err(|e| format!("{}: {e}", event_path.display()))
    });
    match shown {
        Ok(text) => {
            print!("{text}");
            0
        }
        Err(e) => {
            eprintln!("connector check: {e}");
            2
        }
    }
}

pub fn connector_triage(vendor: &str, path: &Path, now: Option<f64>) -> i32 {
    match triage_line(vendor, path, now) {
        Ok(line) => {
            println!("{line}");
            0
        }
        Err(e) => {
            eprintln!("connector triage: {e}");
            2
        }
    }
}

pub fn triage_line(vendor: &str, path: &Path, now: Option<f64>) -> Result<String, String> {
    use switchyard::connectors::{triage, wait};
    if !switchyard::vendors::triage_names().contains(&vendor) {
        return Err(format!(
            "unknown vendor {vendor:?}; one of: {}",
            switchyard::vendors::triage_names().join(", ")
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let recorded: RecordedResponse = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not a recorded response ({e})", path.display()))?;
    let now = match now {
        None => Utc::now(),
        Some(s) if s.is_finite() => DateTime::from_timestamp_millis((s * 1000.0).round() as i64)
            .ok_or_else(|| format!("--now {s} is out of range"))?,
        Some(s) => return Err(format!("--now {s} is not a time")),
    };
    let headers = match recorded.headers {
        ResponseHeaders::Map(m) => m.into_iter().collect(),
        ResponseHeaders::Pairs(p) => p,
    };
    let response = triage::Response {
        status: recorded.status,
        headers,
        body: recorded.body,
    };
    let verdict =
        switchyard::vendors::triage(vendor, &response, now).expect("vendor checked above");
    // Written by hand so the keys keep the documented order.
    let json = |v: serde_json::Value| v.to_string();
    Ok(format!(
        r#"{{"outcome":{},"retry_after_ms":{},"reason":{}}}"#,
        json(serde_json::json!(verdict.kind)),
        json(serde_json::json!(verdict
            .retry_after
            .map(wait::as_millis_ceil))),
        json(serde_json::json!(verdict.reason)),
    ))
}

fn read_rows(data: &Path) -> Result<Vec<(String, String)>, i32> {
    switchyard::model::eval::read_csv(data).map_err(|e| {
        eprintln!("{e}");
        2
    })
}

/// `switchyard model train --data FILE.csv --out MODEL`.
pub fn model_train(data: &Path, out: &Path, config: &switchyard::model::TrainConfig) -> i32 {
    use switchyard::model::Model;
    let rows = match read_rows(data) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let started = std::time::Instant::now();
    let model = match Model::train(&rows, config) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    let secs = started.elapsed().as_secs_f64();
    if let Err(e) = model.save(out) {
        eprintln!("{e}");
        return 1;
    }
    let size = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    println!(
        "trained on {} messages, {} categories, {} features in {secs:.1} s; temperature {:.2}; wrote {} ({:.1} MB)",
        rows.len(),
        model.labels.len(),
        model.vocab.len(),
        model.temperature,
        out.display(),
        size as f64 / 1e6
    );
    0
}

/// `switchyard model eval --model MODEL --data FILE.csv`; the last line is `accuracy=… n=…`.
pub fn model_eval(model: &Path, data: &Path) -> i32 {
    use switchyard::model::{eval, Model};
    let started = std::time::Instant::now();
    let model = match Model::load(model) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    let load_ms = started.elapsed().as_secs_f64() * 1e3;
    let rows = match read_rows(data) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let report = eval::evaluate(&model, &rows);
    println!("model load        {load_ms:.1} ms");
    print!("{report}");
    println!("accuracy={:.4} n={}", report.accuracy, report.n);
    0
}

/// `switchyard model cv --data FILE.csv [--folds 5]`: k-fold cross-validation.
pub fn model_cv(data: &Path, folds: usize, config: &switchyard::model::TrainConfig) -> i32 {
    use switchyard::model::eval;
    let rows = match read_rows(data) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let started = std::time::Instant::now();
    match eval::cross_validate(&rows, folds, config) {
        Ok((report, per_fold)) => {
            let folds: Vec<String> = per_fold.iter().map(|a| format!("{a:.4}")).collect();
            println!(
                "{folds}-fold cross-validation in {:.1} s; per fold: {}",
                started.elapsed().as_secs_f64(),
                folds.join(" "),
                folds = per_fold.len()
            );
            print!("{report}");
            println!("accuracy={:.4} n={}", report.accuracy, report.n);
            0
        }
        Err(e) => {
            eprintln!("{e}");
            1
        }
    }
}

#[cfg(feature = "local")]
/// `--parameter-overrides` as `sam deploy` takes it: `NAME=VALUE` pairs, several per argument
/// (separated by spaces), or `ParameterKey=NAME,ParameterValue=VALUE`.
pub fn parameter_overrides(args: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    args.iter()
        .flat_map(|a| a.split_whitespace())
        .map(|pair| {
            let parsed = match pair.strip_prefix("ParameterKey=") {
                Some(rest) => rest
                    .split_once(",ParameterValue=")
                    .map(|(k, v)| (k.to_owned(), v.to_owned())),
                None => pair
                    .split_once('=')
                    .map(|(k, v)| (k.trim().to_owned(), v.to_owned())),
            };
            parsed.filter(|(k, _)| !k.is_empty()).ok_or_else(|| {
                anyhow::anyhow!(
                    "{pair:?} is not NAME=VALUE (or ParameterKey=NAME,ParameterValue=VALUE)"
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(json: serde_json::Value) -> Case {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn github_case_valid_and_invalid() {
        let mut c = case(serde_json::json!({
            "scheme": "github", "secret": "It's a Secret to Everybody", "method": "POST", "url": "/hook",
            "headers": {"X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"},
            "body": "Hello, World!"
        }));
        assert_eq!(check_case(&c), Ok(Ok(())));
        c.body.push('!');
        assert_eq!(check_case(&c), Ok(Err(webhook::VerifyError::Mismatch)));
        c.scheme = "myspace".into();
        assert!(check_case(&c).unwrap_err().contains("unknown scheme"));
    }

    #[test]
    fn now_enables_the_window_and_host_completes_the_url() {
        let c = case(serde_json::json!({
            "scheme": "slack", "secret": "8f742231b10e8888abcd99yyyzzz85a5",
            "headers": {"X-Slack-Request-Timestamp": "1531420618", "X-Slack-Signature": "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"},
            "body": "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c",
            "now": 1531420618.5
        }));
        assert_eq!(check_case(&c), Ok(Ok(())));
        let late = Case {
            now: Some(1531421000.0),
            ..c
        };
        assert!(matches!(
            check_case(&late),
            Ok(Err(webhook::VerifyError::StaleTimestamp { .. }))
        ));
        let hub = case(serde_json::json!({
            "scheme": "hubspot-v2", "secret": "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy", "method": "POST", "url": "/webhook_uri",
            "headers": {"Host": "www.example.com", "X-HubSpot-Signature": "9569219f8ba981ffa6f6f16aa0f48637d35d728c7e4d93d0d52efaa512af7900"},
            "body": "{\"example_field\":\"example_value\"}"
        }));
        assert_eq!(check_case(&hub), Ok(Ok(())));
    }

    fn triage_file(
        json: &str,
        vendor: &str,
        now: Option<f64>,
    ) -> Result<serde_json::Value, String> {
        let dir = std::env::temp_dir().join(format!("sy-triage-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("response.json");
        std::fs::write(&path, json).unwrap();
        let out = triage_line(vendor, &path, now);
        std::fs::remove_dir_all(&dir).ok();
        out.map(|line| serde_json::from_str(&line).unwrap())
    }

    #[test]
    fn triage_takes_header_maps_or_pairs_and_measures_from_now() {
        let v = triage_file(
            r#"{"status": 429, "headers": [["X-RateLimit-Reset", "2026-11-28T12:01Z"]], "body": ""}"#,
            "jira",
            Some(1795867200.0),
        )
        .unwrap();
        assert_eq!(v["outcome"], "rate_limited");
        assert_eq!(v["retry_after_ms"], 60000);
        let v = triage_file(
            r#"{"status": 200, "headers": {"Content-Type": "application/json"}, "body": "{\"ok\":false,\"error\":\"invalid_auth\"}"}"#,
            "slack",
            None,
        )
        .unwrap();
        assert_eq!(v["outcome"], "auth");
        assert!(v["retry_after_ms"].is_null());
        assert!(v["reason"].as_str().unwrap().contains("invalid_auth"));
    }

    #[test]
    fn triage_refuses_unknown_vendors_and_bad_files() {
        let ok = r#"{"status": 200, "body": ""}"#;
        assert!(triage_file(ok, "myspace", None)
            .unwrap_err()
            .contains("unknown vendor"));
        assert!(triage_file(r#"{"body": ""}"#, "jira", None)
            .unwrap_err()
            .contains("not a recorded response"));
        assert!(triage_file(ok, "jira", Some(f64::NAN)).is_err());
    }

    #[cfg(feature = "local")]
    #[test]
    fn parameter_overrides_take_sams_forms() {
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let pairs = |v: &[(&str, &str)]| {
            v.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            parameter_overrides(&args(&["A=1", "B=2"])).unwrap(),
            pairs(&[("A", "1"), ("B", "2")])
        );
        assert_eq!(
            parameter_overrides(&args(&["A=1 B=x=y"])).unwrap(),
            pairs(&[("A", "1"), ("B", "x=y")])
        );
        assert_eq!(
            parameter_overrides(&args(&["ParameterKey=LlmModel,ParameterValue=sandbox"])).unwrap(),
            pairs(&[("LlmModel", "sandbox")])
        );
        assert!(parameter_overrides(&args(&["nonsense"])).is_err());
    }
}
