//! Paced bulk sync (a nightly CRM sync of N customers): each input row needs a related-record
//! read (its company, found by domain — read once per domain, then cached) and a write (the
//! contact, upserted through the vendor's bulk endpoint: HubSpot batch upsert, 100 per call;
//! Salesforce sObject Collections upsert, 200 per call; Zendesk `users/create_or_update_many`,
//! 100 per call, an asynchronous job whose status is polled — each poll a paced call too).
//!
//! Pacing: the plan's calls are spread evenly across the window, and each still takes a slot of
//! the credential's shared budget (the one act uses), so the sync neither bursts nor starves the
//! live automations. A plan that cannot fit the window under the budget is refused up front.
//! Used by `switchyard batch` and by the scheduled `sync` function.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use reqwest::RequestBuilder;
use secrecy::SecretString;
use serde_json::Value;
use thiserror::Error;

use crate::aws::StoreError;
use crate::connectors::{read_response, ConnectorError};
use crate::pacing::{Pace, Pacer};
use crate::secrets::Credential;

/// One input row: a person to upsert as a contact, and their company's domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Customer {
    /// The person's e-mail address (a row without `@` in it is refused).
    pub email: String,
    /// The person's first name; empty when the row has none.
    pub firstname: String,
    /// The person's last name; empty when the row has none.
    pub lastname: String,
    /// The company's domain, lower-cased; empty when the row has none (no company is read).
    pub company_domain: String,
}

/// Why a sync could not start, or stopped.
#[derive(Debug, Error)]
pub enum SyncError {
    /// An input row could not be read (bad CSV, or an e-mail address without `@`).
    #[error("{source_name} line {line}: {message}")]
    Input {
        /// Where the rows came from (a file name or an `s3://` URL).
        source_name: String,
        /// The row's line in the CSV, the header being line 1.
        line: usize,
        /// What is wrong with the row.
        message: String,
    },
    /// The plan needs more calls than the budget allows in the window; nothing was sent.
    #[error("{calls} calls do not fit {window_s} s under {vendor}'s budget (at most {capacity} calls in that window); widen the window")]
    DoesNotFit {
        /// Calls the plan needs.
        calls: usize,
        /// The window the calls must fit in, in seconds.
        window_s: u64,
        /// The connector whose budget is too small.
        vendor: &'static str,
        /// Most calls the budget allows in the window.
        capacity: u64,
    },
    /// A call failed other than by a rate limit (those are waited out and repeated).
    #[error("{vendor} refused {what}: {error}")]
    Vendor {
        /// The connector that was called.
        vendor: &'static str,
        /// Which call failed, e.g. `the company search` or `a bulk upsert`.
        what: String,
        /// The call's error, as the vendor's triage read it.
        error: ConnectorError,
    },
    /// Reading or updating the shared budget failed.
    #[error(transparent)]
    Pacing(#[from] StoreError),
    /// The sync cannot run as set up (no usable credential or input), or a bulk job gave no
    /// status URL or did not finish in time.
    #[error("{0}")]
    Setup(String),
}

/// Customers from CSV (`email,firstname,lastname,company_domain`); errors name the line.
pub fn read_customers(csv_text: &[u8], source_name: &str) -> Result<Vec<Customer>, SyncError> {
    let mut reader = csv::Reader::from_reader(csv_text);
    let mut out = Vec::new();
    for (i, row) in reader.deserialize::<HashMap<String, String>>().enumerate() {
        let input = |message: String| SyncError::Input {
            source_name: source_name.to_owned(),
            line: i + 2,
            message,
        };
        let row = row.map_err(|e| input(e.to_string()))?;
        let get = |k: &str| row.get(k).map(|v| v.trim().to_owned()).unwrap_or_default();
        let email = get("email");
        if !email.contains('@') {
            // The value itself is PII: say what is wrong, not what it is.
            return Err(input("email is not an e-mail address".into()));
        }
        out.push(Customer {
            email,
            firstname: get("firstname"),
            lastname: get("lastname"),
            company_domain: get("company_domain").to_lowercase(),
        });
    }
    Ok(out)
}

/// One vendor's bulk endpoints, as requests; [`BulkSync`] paces and sends them.
pub trait Target: Send + Sync {
    /// The connector name (its budget).
    fn vendor(&self) -> &'static str;
    /// How the vendor's answers are read (its connector's triage).
    fn triage(&self) -> crate::connectors::Triage;
    /// Most records one bulk write takes.
    fn batch_size(&self) -> usize;
    /// Find the company with this domain.
    fn company_request(&self, http: &reqwest::Client, domain: &str) -> RequestBuilder;
    /// The company's name (or id) from the answer; `None` when there is none.
    fn company(&self, answer: &Value) -> Option<String>;
    /// Upsert `chunk`, each with its company when one was found.
    fn write_request(
        &self,
        http: &reqwest::Client,
        chunk: &[Customer],
        companies: &HashMap<String, Option<String>>,
    ) -> RequestBuilder;
    /// Records the vendor refused inside a 200 answer (bulk endpoints report per record).
    fn refused(&self, answer: &Value) -> usize;
    /// A 2xx answer that reports per record, taken as it is: for one action the vendor's
    /// triage makes a refused record an error; in a bulk write it is counted, not fatal.
    fn per_record_answer(&self, _status: u16, _body: &str) -> Option<Value> {
        None
    }
    /// False when the vendor links records to companies itself (Zendesk: by e-mail domain).
    fn reads_companies(&self) -> bool {
        true
    }
    /// Writes answer with an asynchronous job whose status must be read.
    fn async_jobs(&self) -> bool {
        false
    }
    /// A write answered with an asynchronous job: the request that reads its status.
    fn job_request(&self, _http: &reqwest::Client, _answer: &Value) -> Option<RequestBuilder> {
        None
    }
    /// The finished job's answer (what `refused` reads), or `None` while it still runs.
    fn job_done(&self, _status: &Value) -> Option<Value> {
        None
    }
}

/// How long a bulk job is given before the sync gives up on it.
const JOB_WAIT: Duration = Duration::from_secs(120);

/// The base URL and token of a bearer credential, for a target that takes one.
pub(crate) fn bearer_target(
    connector: &str,
    credential: Credential,
) -> Result<(String, SecretString), SyncError> {
    crate::connectors::bearer(connector, credential).map_err(|e| SyncError::Setup(e.to_string()))
}
/// What the sync will do, before it does it.
#[derive(Debug, PartialEq, Eq)]
pub struct Plan {
    /// Input rows, one per customer.
    pub rows: usize,
    /// Company searches: one per distinct non-empty domain (0 when the vendor links companies).
    pub company_reads: usize,
    /// Bulk writes: the rows divided by the vendor's batch size, rounded up.
    pub batch_writes: usize,
    /// Status reads of asynchronous bulk jobs (at least one per write; more if a job is slow).
    pub job_polls: usize,
}

impl Plan {
    /// The plan for `target`: its batch size, and company reads and job polls only if it has them.
    pub fn for_target(customers: &[Customer], target: &dyn Target) -> Self {
        let mut plan = Plan::new(customers, target.batch_size());
        if !target.reads_companies() {
            plan.company_reads = 0;
        }
        if target.async_jobs() {
            plan.job_polls = plan.batch_writes;
        }
        plan
    }

    /// One company read per distinct non-empty domain, writes of `batch_size` rows, no job polls.
    pub fn new(customers: &[Customer], batch_size: usize) -> Self {
        let mut domains: Vec<&str> = customers
            .iter()
            .map(|c| c.company_domain.as_str())
            .filter(|d| !d.is_empty())
            .collect();
        domains.sort_unstable();
        domains.dedup();
        Plan {
            rows: customers.len(),
            company_reads: domains.len(),
            batch_writes: customers.len().div_ceil(batch_size.max(1)),
            job_polls: 0,
        }
    }

    /// Every call the plan makes: what is checked against the budget and spread over the window.
    pub fn calls(&self) -> usize {
        self.company_reads + self.batch_writes + self.job_polls
    }
}

/// What a sync run did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Records written and not refused.
    pub synced: usize,
    /// Records the vendor refused one by one (bad e-mail, validation rule).
    pub refused: usize,
    /// Calls sent, counting each one repeated after a rate limit.
    pub calls: usize,
    /// Answers that were rate limits (each waited out, then the call repeated).
    pub rate_limited: usize,
    /// How long the run took, from its first scheduled call to its end.
    pub elapsed: Duration,
}

/// The plan's calls, evenly spaced from the start.
struct Spacer {
    next: Instant,
    spacing: Duration,
}

impl Spacer {
    async fn turn(&mut self) {
        let at = self.next;
        self.next += self.spacing;
        tokio::time::sleep_until(at.into()).await;
    }
}

/// A paced bulk sync of customers to one vendor's bulk endpoints.
pub struct BulkSync {
    /// The client every call is sent with.
    pub http: reqwest::Client,
    /// The shared budgets: each call takes a slot of the credential's first, as act's do.
    pub pacer: Pacer,
    /// The credential's budget key, shared with act (its secret id).
    pub credential: String,
    /// The vendor's bulk endpoints the rows are written through.
    pub target: Box<dyn Target>,
}

impl BulkSync {
    /// One paced call: a slot of the shared budget first; a 429 holds the whole budget.
    async fn call(
        &self,
        what: &str,
        request: impl Fn() -> RequestBuilder,
        report: &mut Report,
    ) -> Result<Value, SyncError> {
        let vendor = self.target.vendor();
        let refused = |error| SyncError::Vendor {
            vendor,
            what: what.to_owned(),
            error,
        };
        loop {
            if let Pace::Defer(wait) = self.pacer.wait_turn(vendor, &self.credential).await? {
                tokio::time::sleep(wait).await;
                continue;
            }
            report.calls += 1;
            let result = crate::connectors::send_with(vendor, request(), |a| {
                match self.target.per_record_answer(a.status.as_u16(), &a.body) {
                    Some(v) => Ok(v),
                    None => read_response(self.target.triage(), a.status, &a.headers, a.body),
                }
            })
            .await;
            match result {
                Ok(v) => return Ok(v),
                Err(ConnectorError::RateLimited { retry_after }) => {
                    report.rate_limited += 1;
                    let wait = self
                        .pacer
                        .rate_limited(vendor, &self.credential, retry_after)
                        .await?;
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(refused(e)),
            }
        }
    }

    /// Wait for an asynchronous bulk job (polling its status, each poll a paced call); other
    /// answers pass through.
    async fn finish_job(
        &self,
        answer: Value,
        report: &mut Report,
        spacer: &mut Spacer,
    ) -> Result<Value, SyncError> {
        if !self.target.async_jobs() {
            return Ok(answer);
        }
        let started = Instant::now();
        let mut status = answer;
        // The first status read takes the slot the plan kept for it (the job runs meanwhile).
        spacer.turn().await;
        loop {
            if let Some(done) = self.target.job_done(&status) {
                return Ok(done);
            }
            if self.target.job_request(&self.http, &status).is_none() {
                return Err(SyncError::Setup(format!(
                    "{}'s bulk job answer has no status URL on the account's host",
                    self.target.vendor()
                )));
            }
            if started.elapsed() > JOB_WAIT {
                return Err(SyncError::Setup(format!(
                    "{}'s bulk job did not finish in {} s",
                    self.target.vendor(),
                    JOB_WAIT.as_secs()
                )));
            }
            let previous = status.clone();
            status = self
                .call(
                    "a bulk job's status",
                    || {
                        self.target
                            .job_request(&self.http, &previous)
                            .expect("checked above")
                    },
                    report,
                )
                .await?;
            if self.target.job_done(&status).is_none() {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }

    /// Run the plan, its calls spread evenly across `window`; `progress` gets rows done.
    pub async fn run(
        &self,
        customers: &[Customer],
        window: Duration,
        progress: &(dyn Fn(usize) + Send + std::marker::Sync),
    ) -> Result<Report, SyncError> {
        let plan = Plan::for_target(customers, self.target.as_ref());
        let vendor = self.target.vendor();
        let capacity = self.pacer.limits.capacity(vendor, window);
        if (plan.calls() as f64) > capacity {
            return Err(SyncError::DoesNotFit {
                calls: plan.calls(),
                window_s: window.as_secs(),
                vendor,
                capacity: capacity as u64,
            });
        }
        let spacing = window / plan.calls().max(1) as u32;
        let started = Instant::now();
        let mut report = Report::default();
        let mut spacer = Spacer {
            next: Instant::now(),
            spacing,
        };
        let mut companies: HashMap<String, Option<String>> = HashMap::new();
        for chunk in customers.chunks(self.target.batch_size()) {
            for c in chunk {
                if !self.target.reads_companies()
                    || c.company_domain.is_empty()
                    || companies.contains_key(&c.company_domain)
                {
                    continue;
                }
                spacer.turn().await;
                let found = self
                    .call(
                        "the company search",
                        || self.target.company_request(&self.http, &c.company_domain),
                        &mut report,
                    )
                    .await?;
                companies.insert(c.company_domain.clone(), self.target.company(&found));
            }
            spacer.turn().await;
            let answer = self
                .call(
                    "a bulk upsert",
                    || self.target.write_request(&self.http, chunk, &companies),
                    &mut report,
                )
                .await?;
            let answer = self.finish_job(answer, &mut report, &mut spacer).await?;
            let refused = self.target.refused(&answer).min(chunk.len());
            report.refused += refused;
            report.synced += chunk.len() - refused;
            progress(chunk.len());
        }
        report.elapsed = started.elapsed();
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customers_parse_and_bad_rows_name_their_line_not_their_value() {
        let ok = b"email,firstname,lastname,company_domain\na@x.io,A,B,X.IO\n";
        let c = read_customers(ok, "in.csv").unwrap();
        assert_eq!(c[0].company_domain, "x.io");
        let bad = b"email,firstname,lastname,company_domain\na@x.io,A,B,x.io\nsecret-person,C,D,\n";
        let e = read_customers(bad, "in.csv").unwrap_err().to_string();
        assert!(e.contains("in.csv line 3"), "{e}");
        assert!(!e.contains("secret-person"), "{e}");
    }

    #[test]
    fn plan_reads_each_domain_once_and_writes_in_batches() {
        let customers: Vec<Customer> = (0..450)
            .map(|i| Customer {
                email: format!("c{i}@x.io"),
                firstname: String::new(),
                lastname: String::new(),
                company_domain: if i % 3 == 0 {
                    String::new()
                } else {
                    format!("d{}.io", i % 7)
                },
            })
            .collect();
        let p = Plan::new(&customers, 200);
        assert_eq!((p.rows, p.company_reads, p.batch_writes), (450, 7, 3));
        assert_eq!(Plan::new(&customers, 100).batch_writes, 5);
    }
}
