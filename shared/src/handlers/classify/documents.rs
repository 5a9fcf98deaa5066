//! classify's document step: each file an event names is fetched through its vendor's
//! connection (the credential and its refresh, the shared budget, the breaker, one call record
//! each), inspected, and its text joins the event's for classification. A file that cannot be
//! read sends the event to a person with the reason; one that cannot be fetched *now* (no
//! budget, circuit open, the vendor down) has classify try again later.

use std::time::Duration;

use tracing::{info, warn};

use super::ocr::{Ocr, OcrError};
use crate::connectors::download;
use crate::connectors::ConnectorError;
use crate::documents::{self, Kind, Read};
use crate::event::{Attachment, Event};
use crate::pacing::breaker::{breaker_key, Gate};
use crate::pacing::{Pace, Pacer};
use crate::routing::documents::Ask;
use crate::vendors::Connectors;

/// The longest one file's inspection may take (its work is bounded by the limits; this bounds
/// a slow machine).
const INSPECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the document step may spend on one event.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// Files read per event; any beyond send the event to a person.
    pub max_count: usize,
    /// How one file is fetched: its size cap (the same as inspection's), timeout and loopback rule.
    pub fetch: download::Limits,
    /// What inspecting one file may cost (`DOCUMENT_MAX_BYTES` sets its size cap).
    pub inspect: documents::Limits,
    /// Document text joined to the event's, all documents together.
    pub max_total_chars: usize,
}

impl Limits {
    /// How many documents may be held in memory at once (`DOCUMENT_CONCURRENCY`, default 1).
    pub fn concurrency(s: &crate::settings::Settings) -> usize {
        s.positive("DOCUMENT_CONCURRENCY", 1)
    }

    /// The limits the `DOCUMENT_*` settings set, with defaults for those unset.
    pub fn from_settings(s: &crate::settings::Settings) -> Self {
        let number = |name: &str, default: usize| s.positive(name, default);
        let inspect = documents::Limits {
            max_bytes: number("DOCUMENT_MAX_BYTES", documents::Limits::default().max_bytes),
            ..documents::Limits::default()
        };
        Limits {
            max_count: number("DOCUMENT_MAX_COUNT", 5),
            fetch: download::Limits {
                max_bytes: inspect.max_bytes,
                timeout: Duration::from_secs(number("DOCUMENT_TIMEOUT_SECS", 15) as u64),
                allow_loopback: s.optional("DOCUMENT_LOOPBACK_URLS") == Some("allow"),
            },
            inspect,
            max_total_chars: number("DOCUMENT_MAX_TEXT_CHARS", 20_000),
        }
    }
}

/// Fetches and reads an event's documents.
#[derive(Clone, Debug)]
pub struct Reader {
    /// Builds the vendor connection, with its credential, each file is fetched through.
    pub connectors: Connectors,
    /// The shared budgets and breakers each fetch goes through.
    pub pacer: Pacer,
    /// What reading one event's documents may spend.
    pub limits: Limits,
    /// Documents held in memory at once across the batch (`DOCUMENT_CONCURRENCY`, default 1):
    /// a 10 MiB file, its objects and a page's parsed content (up to ~150 MB) fit classify's
    /// 256 MB once.
    pub permits: std::sync::Arc<tokio::sync::Semaphore>,
    /// Reads scans and pictures when `DOCUMENT_OCR` turns it on; without it they go to a person.
    pub ocr: Option<Ocr>,
    /// Keeps each fetched file when `DOCUMENT_BUCKET` names a bucket; without it the bytes live
    /// only while they are read.
    pub keep: Option<Keep>,
}

/// Where fetched documents are kept (`DocumentRetentionDays` above 0): the bucket expires them.
#[derive(Clone, Debug)]
pub struct Keep {
    s3: aws_sdk_s3::Client,
    bucket: String,
}

impl Keep {
    /// Keeps documents in the bucket `DOCUMENT_BUCKET` names; `None` when it is unset or empty.
    pub fn from_settings(
        aws: &crate::aws::AwsClients,
        s: &crate::settings::Settings,
    ) -> Option<Self> {
        s.optional("DOCUMENT_BUCKET")
            .filter(|b| !b.is_empty())
            .map(|bucket| Keep {
                s3: aws.s3(),
                bucket: bucket.to_owned(),
            })
    }

    /// Keeps the `n`th file of `event_id` under `documents/<event id>/<n>` (never its name,
    /// which can hold a person's): the same key on a redelivery, so a file is kept once.
    async fn put(&self, event_id: &str, n: usize, bytes: &[u8]) -> Result<String, String> {
        use aws_sdk_s3::error::ProvideErrorMetadata;
        let key = format!("documents/{event_id}/{n}");
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .body(aws_sdk_s3::primitives::ByteStream::from(bytes.to_vec()))
            .send()
            .await
            .map_err(|e| {
                format!(
                    "keeping it in S3 failed: {}",
                    e.code().map(str::to_owned).unwrap_or_else(|| e.to_string())
                )
            })?;
        Ok(format!("s3://{}/{key}", self.bucket))
    }
}

/// What an event's documents gave.
#[derive(Debug, Default)]
pub struct Documents {
    /// Per file, for the decision record and `explain`.
    pub read: Vec<Read>,
    /// The text read, capped, to classify with the event's own.
    pub text: String,
    /// Why a person must look (the first bad case, naming its file).
    pub problem: Option<String>,
}

impl Documents {
    /// What the requester is asked for, per document (`[documents]` in the routing config).
    pub fn asks(read: &[Read]) -> Vec<(Ask, String)> {
        read.iter()
            .filter(|d| d.asks_sender())
            .map(|d| {
                let ask = match d.kind == Kind::Encrypted.as_str() {
                    true => Ask::Password,
                    false => Ask::Unreadable,
                };
                (ask, d.name.clone())
            })
            .collect()
    }
}

/// A file could not be fetched now: classify tries the event again later.
#[derive(Debug)]
pub struct NotNow(pub String);

impl Reader {
    /// The event's documents, read before `deadline` (the invocation's, less what classifying
    /// still needs): a file that could not finish by then is tried again later.
    pub async fn read(
        &self,
        event: &Event,
        deadline: std::time::Instant,
    ) -> Result<Documents, NotNow> {
        let mut out = Documents::default();
        let vendor = event.source.as_str();
        for (i, file) in event.attachments.iter().enumerate() {
            let name = display_name(file, i);
            let needs = self.limits.fetch.timeout + INSPECT_TIMEOUT;
            if i < self.limits.max_count && std::time::Instant::now() + needs > deadline {
                return Err(NotNow(format!(
                    "{name}: too little of this invocation left to fetch it"
                )));
            }
            if i >= self.limits.max_count {
                out.read
                    .push(Read::not_read(&name, "skipped", "over the count limit"));
                out.problem.get_or_insert(format!(
                    "{} attachments, over the limit of {}: only the first {} were read",
                    event.attachments.len(),
                    self.limits.max_count,
                    self.limits.max_count
                ));
                continue;
            }
            if let Some(size) = file
                .size
                .filter(|s| *s > self.limits.fetch.max_bytes as u64)
            {
                let reason = format!(
                    "{size} bytes, over the {}-byte limit",
                    self.limits.fetch.max_bytes
                );
                out.problem
                    .get_or_insert(format!("document {name} not read: {reason}"));
                out.read.push(Read::not_read(&name, "not_fetched", &reason));
                continue;
            }
            let _permit = self.permits.acquire().await.ok();
            let bytes = match self.fetch(vendor, file).await {
                Ok(b) => b,
                Err(Fetched::Later(why)) => return Err(NotNow(format!("{name}: {why}"))),
                Err(Fetched::Refused(e)) => {
                    warn!(event_id = %event.id, document = i, error = %e, "document not fetched");
                    out.problem
                        .get_or_insert(format!("document {name} could not be fetched: {e}"));
                    out.read
                        .push(Read::not_read(&name, "not_fetched", &e.to_string()));
                    continue;
                }
            };
            // Kept before it is read: what a person reviews is what was fetched. A store that
            // fails now is tried again with the event, so no kept document goes missing.
            let kept = match &self.keep {
                Some(keep) => match keep.put(&event.id, i + 1, &bytes).await {
                    Ok(at) => Some(at),
                    Err(why) => return Err(NotNow(format!("{name}: {why}"))),
                },
                None => None,
            };
            // Parsing is CPU work: off the runtime's threads, so other events' calls go on.
            let limits = self.limits.inspect.clone();
            let size = bytes.len();
            let ocr_pages = self.ocr.as_ref().map(|o| o.max_pages);
            // A file that makes the parser panic or run long fails the same way every time:
            // it is settled as unreadable at once, never retried. A scan's pages for OCR are
            // cut out in the same work.
            let work = tokio::task::spawn_blocking(move || {
                let i = documents::inspect(&bytes, &limits);
                let pages = ocr_pages
                    .filter(|_| i.wants_ocr())
                    .map(|max| documents::ocr_pages(&bytes, &i, &limits, max));
                (i, pages)
            });
            let (mut inspection, pages) = match tokio::time::timeout(INSPECT_TIMEOUT, work).await {
                Ok(Ok(done)) => done,
                Ok(Err(_)) => (
                    documents::Inspection::unreadable("the parser failed on it"),
                    None,
                ),
                Err(_) => (
                    documents::Inspection::unreadable(&format!(
                        "reading it took longer than {} s",
                        INSPECT_TIMEOUT.as_secs()
                    )),
                    None,
                ),
            };
            if let (Some(ocr), Some(pages)) = (&self.ocr, pages) {
                inspection = match pages {
                    Err(why) => inspection.ocr_failed(&why.to_string()),
                    Ok(pages) => {
                        let n = pages.len();
                        if std::time::Instant::now() + super::ocr::PAGE_TIMEOUT * n as u32
                            > deadline
                        {
                            return Err(NotNow(format!(
                                "{name}: too little of this invocation left to read it by OCR"
                            )));
                        }
                        metrics::counter!(crate::metrics::OCR_PAGES).increment(n as u64);
                        match ocr.read(pages).await {
                            Ok(text) => inspection.read_by_ocr(&text, n, &self.limits.inspect),
                            Err(OcrError::Later(why)) => {
                                return Err(NotNow(format!("{name}: {why}")))
                            }
                            Err(OcrError::Refused(why)) => {
                                warn!(event_id = %event.id, document = i, error = %why, "OCR refused");
                                inspection.ocr_failed(&why)
                            }
                        }
                    }
                };
            }
            info!(
                event_id = %event.id,
                document = i,
                kind = inspection.kind.as_str(),
                bytes = size,
                text_chars = inspection.text_chars,
                "document inspected"
            );
            if let Some(problem) = problem(&inspection, &name) {
                out.problem.get_or_insert(problem);
            }
            if inspection.kind == Kind::Text {
                let room = self
                    .limits
                    .max_total_chars
                    .saturating_sub(out.text.chars().count());
                if room > 0 {
                    out.text.push_str("\n\n");
                    out.text.extend(inspection.text.chars().take(room));
                }
            }
            let mut read = Read::of(&name, &inspection);
            read.kept = kept;
            out.read.push(read);
        }
        // Counted once the event's documents are settled (a file tried again later is not).
        for d in &out.read {
            crate::metrics::count(crate::metrics::DOCUMENTS_READ, "kind", &d.kind);
        }
        Ok(out)
    }

    /// One file through its connection: breaker, budget, call, one refresh on a refused
    /// credential.
    async fn fetch(&self, vendor: &str, file: &Attachment) -> Result<Vec<u8>, Fetched> {
        let credential =
            crate::vendors::secret_id(&self.connectors.settings, vendor).ok_or_else(|| {
                Fetched::Refused(ConnectorError::Unsupported(format!(
                    "no {vendor} connection is configured to fetch it with"
                )))
            })?;
        let breaker = breaker_key(vendor, &credential);
        let now_us = || chrono::Utc::now().timestamp_micros();
        let gate = self
            .pacer
            .breaker
            .gate(&breaker, now_us())
            .await
            .map_err(later)?;
        if let Gate::Open { retry_after } = gate {
            return Err(Fetched::Later(format!("circuit open for {retry_after:?}")));
        }
        let mut connector = self.connectors.get(vendor).await.map_err(resolve)?;
        let mut refreshed = false;
        loop {
            match self
                .pacer
                .wait_turn(vendor, &credential)
                .await
                .map_err(later)?
            {
                Pace::Go => {}
                Pace::Reserved { .. } | Pace::Defer(_) => {
                    return Err(Fetched::Later(format!("no {vendor} budget left now")))
                }
            }
            match connector.download(file, self.limits.fetch).await {
                Ok(bytes) => {
                    if !matches!(gate, Gate::Closed { failures: 0 }) {
                        let _ = self.pacer.breaker.success(&breaker).await;
                    }
                    return Ok(bytes);
                }
                Err(ConnectorError::Auth(_)) if !refreshed => {
                    refreshed = true;
                    if !self
                        .connectors
                        .after_auth_failure(vendor)
                        .await
                        .map_err(resolve)?
                    {
                        return Err(Fetched::Refused(ConnectorError::Auth(
                            "the credential was refused".into(),
                        )));
                    }
                    connector = self.connectors.get(vendor).await.map_err(resolve)?;
                    crate::calls::next_attempt();
                }
                Err(ConnectorError::RateLimited { retry_after }) => {
                    let _ = self
                        .pacer
                        .rate_limited(vendor, &credential, retry_after)
                        .await;
                    return Err(Fetched::Later(format!("{vendor} asked to slow down")));
                }
                Err(e @ ConnectorError::Transient(_)) => {
                    let _ = self.pacer.breaker.failure(&breaker, now_us()).await;
                    return Err(Fetched::Later(e.to_string()));
                }
                Err(e) => return Err(Fetched::Refused(e)),
            }
        }
    }
}

enum Fetched {
    /// Try the event again later.
    Later(String),
    /// The vendor (or the limits) said no: a person is told.
    Refused(ConnectorError),
}

fn later(e: impl std::fmt::Display) -> Fetched {
    Fetched::Later(e.to_string())
}

fn resolve(e: crate::connectors::ResolveError) -> Fetched {
    use crate::connectors::auth::AuthError;
    use crate::connectors::ResolveError;
    match e {
        ResolveError::Auth(AuthError::Cooldown { .. }) => Fetched::Later(e.to_string()),
        ResolveError::Auth(AuthError::ReauthRequired { .. }) => {
            Fetched::Refused(ConnectorError::ReauthRequired(e.to_string()))
        }
        ResolveError::Auth(_) | ResolveError::Secret(_) => Fetched::Later(e.to_string()),
        other => Fetched::Refused(ConnectorError::Unsupported(other.to_string())),
    }
}

/// A file's name for people: redacted like the input (a name can hold one), or its place.
fn display_name(file: &Attachment, i: usize) -> String {
    match &file.name {
        Some(n) => format!("{:?}", crate::redact::redact(n)),
        None => format!("#{}", i + 1),
    }
}

/// Why a person must look at an event with this document, if one must.
fn problem(i: &documents::Inspection, name: &str) -> Option<String> {
    let why = match i.kind {
        Kind::Text => return None,
        Kind::Scanned => match i.reason.as_deref().filter(|_| i.ocr) {
            Some(ocr) => format!("scanned document, no text layer ({ocr})"),
            None => "scanned document, no text layer".to_owned(),
        },
        Kind::Encrypted => "password-protected document".to_owned(),
        Kind::Corrupt => format!(
            "document could not be read ({})",
            i.reason.as_deref().unwrap_or("corrupt")
        ),
        Kind::Image => match i.reason.as_deref().filter(|_| i.ocr) {
            Some(ocr) => format!("an image ({ocr})"),
            None => "an image: its text needs OCR".to_owned(),
        },
        Kind::Unsupported => format!(
            "document not read ({})",
            i.reason.as_deref().unwrap_or("unsupported type")
        ),
    };
    Some(format!("{why}: {name}"))
}
