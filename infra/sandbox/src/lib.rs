//! The SaaS sandbox: one HTTP server playing each vendor's API as documented — auth, response
//! shapes, error bodies — and keeping a ledger of every effect so tests can prove "exactly once".
//!
//! Each vendor lives under its own prefix (`/zendesk`, `/slack`, `/llm/v1`), which is the
//! `base_url` a connection secret points at locally.

mod admin;
pub mod casebook;
pub mod drift;
pub mod faults;
pub mod files;
pub mod hubspot;
pub mod jira;
pub mod llm;
pub mod query;
pub mod ratelimit;
pub mod receiver;
pub mod salesforce;
pub mod salesforce_auth;
pub mod slack;
pub mod slack_person;
pub mod teams;
pub mod zendesk;
pub mod zendesk_users;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use serde::Serialize;

/// One effect a vendor recorded (a comment added, a message posted, a token issued).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LedgerEntry {
    pub vendor: &'static str,
    pub operation: String,
    pub object_id: String,
    pub detail: serde_json::Value,
}

/// Credentials the sandbox accepts; the local stack writes them into Secrets Manager.
#[derive(Clone, Debug)]
pub struct SandboxCredentials {
    pub zendesk_email: String,
    pub zendesk_token: String,
    pub slack_client_id: String,
    pub slack_client_secret: String,
    pub slack_access_token: String,
    pub slack_refresh_token: String,
    pub llm_api_key: String,
    pub jira_email: String,
    pub jira_token: String,
    pub salesforce_token: String,
    /// The connected app (consumer key and secret), its certificate's private key (PEM) and
    /// the pre-approved integration user, for the JWT bearer and client credentials flows.
    pub salesforce_client_id: String,
    pub salesforce_client_secret: String,
    pub salesforce_private_key: String,
    pub salesforce_username: String,
    pub hubspot_token: String,
    pub teams_webhook_token: String,
    /// `whsec_…`: what switchyard signs its generic webhooks with.
    pub webhook_secret: String,
    /// Casebook's login (a described connector's session login).
    pub casebook_username: String,
    pub casebook_password: String,
}

/// Called with each effect a vendor made, before its answer is sent ([`Sandbox::on_effect`]).
pub type EffectFn = Arc<dyn Fn(&LedgerEntry) + Send + Sync>;

#[derive(Clone)]
pub struct EffectHook(pub EffectFn);

impl std::fmt::Debug for EffectHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EffectHook")
    }
}

#[derive(Debug, Default)]
pub struct State {
    pub ledger: Vec<LedgerEntry>,
    pub on_effect: Option<EffectHook>,
    pub zendesk_tickets: BTreeMap<u64, serde_json::Value>,
    /// Each ticket's audits (one per update), with the update's custom metadata.
    pub zendesk_audits: BTreeMap<u64, Vec<serde_json::Value>>,
    pub jira_issues: BTreeMap<String, serde_json::Value>,
    /// When each issue becomes visible to JQL search: Jira's search index is eventually
    /// consistent, so a just-created issue is not found for `jira_search_lag`.
    pub jira_indexed_at: BTreeMap<String, std::time::Instant>,
    pub jira_search_lag: std::time::Duration,
    pub salesforce_cases: BTreeMap<String, serde_json::Value>,
    pub hubspot_tickets: BTreeMap<u64, serde_json::Value>,
    pub hubspot_contacts: BTreeMap<String, serde_json::Value>,
    pub hubspot_limits: ratelimit::Limits,
    pub hubspot_companies: BTreeMap<String, serde_json::Value>,
    pub hubspot_company_reads: u64,
    /// Ticket properties a portal admin deleted (switchyard's key property, say).
    pub hubspot_deleted_properties: BTreeSet<String>,
    pub teams_limits: ratelimit::Limits,
    pub jira_limits: ratelimit::Limits,
    pub slack_limits: ratelimit::Limits,
    pub teams_webhook_removed: bool,
    pub faults: faults::Faults,
    /// API changes switched on, per vendor (until switched off).
    pub drift: BTreeMap<String, Vec<drift::Drift>>,
    pub webhook_ids: BTreeSet<String>,
    pub salesforce_api_calls: u64,
    pub salesforce_daily_max: u64,
    pub salesforce_contacts: BTreeMap<String, serde_json::Value>,
    pub salesforce_sessions: salesforce_auth::Sessions,
    pub zendesk_users: zendesk_users::Users,
    /// Permissions an admin took away: (vendor, scope / permission / `role:agent` / `Object.verb`).
    pub revoked_permissions: BTreeSet<(String, String)>,
    /// Vendors whose IP allowlist refuses the sandbox's callers.
    pub ip_blocked: BTreeSet<String>,
    /// Seconds the vendors' clocks (their `Date` header) run ahead of ours.
    pub clock_offset_secs: i64,
    pub salesforce_account_reads: u64,
    pub slack_channels: BTreeMap<String, String>,
    /// Messages posted, per channel id, oldest first (with their metadata).
    pub slack_messages: BTreeMap<String, Vec<serde_json::Value>>,
    /// Valid Slack access tokens, and the single-use refresh tokens not yet spent.
    pub slack_access_tokens: BTreeSet<String>,
    pub slack_refresh_tokens: BTreeSet<String>,
    /// User groups (`S…`) and their members' ids.
    pub slack_usergroups: BTreeMap<String, Vec<String>>,
    pub slack_rotations: u64,
    pub zendesk_limits: ratelimit::Limits,
    pub llm_mode: llm::LlmMode,
    pub llm_calls: u64,
    pub next_id: u64,
    pub casebook: casebook::Casebook,
    pub files: files::Files,
}

impl State {
    /// Whether switchyard's account or app at `vendor` still holds `permission`.
    pub fn has(&self, vendor: &str, permission: &str) -> bool {
        !self
            .revoked_permissions
            .contains(&(vendor.to_owned(), permission.to_owned()))
    }
}

#[derive(Clone)]
pub struct Sandbox {
    pub addr: SocketAddr,
    pub credentials: SandboxCredentials,
    state: Arc<Mutex<State>>,
    task: Arc<tokio::task::JoinHandle<()>>,
}

pub(crate) struct Shared {
    pub state: Arc<Mutex<State>>,
    pub credentials: SandboxCredentials,
    pub addr: std::net::SocketAddr,
}

impl Sandbox {
    /// Start on a free loopback port, with a few tickets and channels to act on.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_on(0).await
    }

    /// Start on this loopback port (0: a free one).
    pub async fn start_on(port: u16) -> std::io::Result<Self> {
        let rnd = || uuid::Uuid::new_v4().simple().to_string();
        let credentials = SandboxCredentials {
            zendesk_email: "switchyard@example.com".into(),
            zendesk_token: rnd(),
            slack_client_id: "1234567890.0987654321".into(),
            slack_client_secret: rnd(),
            slack_access_token: format!("xoxe.xoxb-1-{}", rnd()),
            slack_refresh_token: format!("xoxe-1-{}", rnd()),
            llm_api_key: format!("sk-sandbox-{}", rnd()),
            jira_email: "switchyard@example.com".into(),
            jira_token: format!("ATATT3x{}", rnd()),
            salesforce_token: format!("00D000000000001!{}", rnd()),
            salesforce_client_id: format!("3MVG9{}", rnd()),
            salesforce_client_secret: rnd(),
            salesforce_private_key: salesforce_auth::key_pair().0.clone(),
            salesforce_username: "integration@example.com".into(),
            hubspot_token: format!("pat-na1-{}", rnd()),
            teams_webhook_token: rnd(),
            webhook_secret: format!(
                "whsec_{}",
                base64::Engine::encode(&base64::engine::general_purpose::STANDARD, rnd())
            ),
            casebook_username: "switchyard".into(),
            casebook_password: rnd(),
        };
        let mut state = State {
            next_id: 1000,
            salesforce_daily_max: salesforce::DAILY_MAX,
            jira_search_lag: jira::SEARCH_LAG,
            ..State::default()
        };
        state
            .slack_access_tokens
            .insert(credentials.slack_access_token.clone());
        state
            .slack_refresh_tokens
            .insert(credentials.slack_refresh_token.clone());
        state
            .slack_channels
            .insert("#incidents".into(), "C0INCIDENTS".into());
        for (i, (domain, name)) in [
            ("acme.com", "Acme Corp"),
            ("globex.com", "Globex"),
            ("initech.com", "Initech"),
            ("umbrella.com", "Umbrella"),
            ("hooli.com", "Hooli"),
        ]
        .iter()
        .enumerate()
        {
            state.hubspot_companies.insert(
                (*domain).into(),
                serde_json::json!({"id": (9000 + i).to_string(), "properties": {"name": name, "domain": domain}}),
            );
        }
        state
            .slack_channels
            .insert("#support-review".into(), "C0REVIEW".into());
        // A few tickets, cases and issues, as any account has (the canary reads recent ones).
        for (id, subject, priority) in [
            (7001, "Cannot sync contacts", "HIGH"),
            (7002, "Billing address wrong on invoice", "MEDIUM"),
        ] {
            state
                .hubspot_tickets
                .insert(id, hubspot::seed_ticket(id, subject, priority));
        }
        for (n, subject) in [
            (1u64, "Printer offline in Berlin office"),
            (2, "VPN drops every hour"),
        ] {
            let id = format!("500{n:012}AAA");
            state.salesforce_cases.insert(
                id.clone(),
                salesforce::new_case(&id, &format!("seed-{n}"), subject),
            );
        }
        // A few issues in a support project, as any site has (the canary reads recent ones).
        for (id, key, summary) in [
            (10_001, "SUP-1", "Export to CSV times out"),
            (10_002, "SUP-2", "Dark mode resets after login"),
        ] {
            state
                .jira_issues
                .insert(key.into(), jira::new_issue(id, key, summary));
        }
        // A few tickets end users opened, as any account has (the canary reads recent ones).
        for (id, subject) in [
            (101, "Cannot log in after the update"),
            (102, "Invoice shows the wrong amount"),
            (103, "Export to CSV times out"),
        ] {
            state
                .zendesk_tickets
                .insert(id, zendesk::new_ticket(id, subject));
        }
        let state = Arc::new(Mutex::new(state));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            state: state.clone(),
            credentials: credentials.clone(),
            addr,
        });
        let faulty = |vendor: &'static str, routes: Router<Arc<Shared>>| {
            routes.layer(axum::middleware::from_fn_with_state(
                (shared.clone(), vendor),
                faults::apply,
            ))
        };
        let app = Router::new()
            .nest(
                "/zendesk",
                faulty(
                    "zendesk",
                    zendesk::routes().layer(axum::middleware::from_fn_with_state(
                        shared.clone(),
                        zendesk::limit,
                    )),
                ),
            )
            .nest("/slack", faulty("slack", slack::routes()))
            .nest("/slack-hooks", slack_person::routes())
            .nest("/llm", llm::routes())
            .nest("/jira", faulty("jira", jira::routes()))
            .nest("/salesforce", faulty("salesforce", salesforce::routes()))
            .nest("/hubspot", faulty("hubspot", hubspot::routes()))
            .nest("/teams", faulty("teams", teams::routes()))
            .nest("/casebook", faulty("casebook", casebook::routes()))
            .nest("/receiver", receiver::routes())
            .nest("/files", files::routes())
            .nest(
                "/_admin",
                admin::routes().layer(axum::middleware::from_fn(loopback_host_only)),
            )
            .with_state(shared);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            addr,
            credentials,
            state,
            task: Arc::new(task),
        })
    }

    /// Casebook's session rules: a session's life, and the calls per hour that log it out.
    pub fn set_casebook_sessions(&self, life: Duration, max_calls_per_hour: u64) {
        let mut state = self.state.lock().expect("sandbox state");
        state.casebook.session_life = life;
        state.casebook.max_calls_per_hour = max_calls_per_hour;
    }

    /// Casebook starts requiring `field` on new cases (its documentation never mentioned it).
    pub fn casebook_require(&self, field: &str) {
        let mut state = self.state.lock().expect("sandbox state");
        state.casebook.required.insert(field.to_owned());
    }

    /// Casebook's gateway answers the next `calls` with its rate-limit 400.
    pub fn casebook_throttle(&self, calls: u32) {
        self.state.lock().expect("sandbox state").casebook.throttle = calls;
    }

    /// Casebook's (logins, calls refused because their session had ended).
    pub fn casebook_sessions(&self) -> (u64, u64) {
        let state = self.state.lock().expect("sandbox state");
        (state.casebook.logins, state.casebook.refused_sessions)
    }

    /// A Casebook case by number (`CB-5004`).
    pub fn casebook_case(&self, number: &str) -> Option<serde_json::Value> {
        let state = self.state.lock().expect("sandbox state");
        state
            .casebook
            .cases
            .values()
            .find(|c| c["number"] == number)
            .cloned()
    }

    /// Store a file at `vendor` and return it as the vendor's webhook names it (its URL is the
    /// vendor's download flow, see [`files`]).
    pub fn attach(
        &self,
        vendor: &'static str,
        name: &str,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> switchyard::event::Attachment {
        let mut state = self.state.lock().expect("sandbox state");
        state.next_id += 1;
        let id = state.next_id;
        let key = format!(
            "{vendor}{id:06}x{:08x}",
            uuid::Uuid::new_v4().as_u128() as u32
        );
        let size = bytes.len() as u64;
        state.files.by_key.insert(
            key.clone(),
            files::File {
                vendor,
                name: name.to_owned(),
                content_type: content_type.to_owned(),
                bytes,
            },
        );
        let base = self.base_url(vendor);
        let url = match vendor {
            "zendesk" => format!("{base}/attachments/token/{key}/?name={name}"),
            "slack" => format!("{base}/files-pri/{key}/download/{name}"),
            _ => format!("{base}/rest/api/3/attachment/content/{key}"),
        };
        switchyard::event::Attachment {
            id: Some(id.to_string()),
            name: Some(name.to_owned()),
            declared_type: Some(content_type.to_owned()),
            size: Some(size),
            url: Some(url),
        }
    }

    /// Every fetch of a signed file URL: (key, whether it carried `Authorization`).
    pub fn signed_fetches(&self) -> Vec<(String, bool)> {
        self.state
            .lock()
            .expect("sandbox state")
            .files
            .signed_fetches
            .clone()
    }

    pub fn base_url(&self, vendor: &str) -> String {
        format!("http://{}/{vendor}", self.addr)
    }

    /// Switch an API change on for `vendor` (see [`drift::MODES`]) on its default field.
    pub fn drift(&self, vendor: &str, mode: &str) -> Result<(), String> {
        let d = drift::Drift::new(vendor, mode, None)?;
        self.state
            .lock()
            .expect("sandbox state")
            .drift
            .entry(vendor.to_owned())
            .or_default()
            .push(d);
        Ok(())
    }

    /// A HubSpot admin deletes a ticket property.
    pub fn hubspot_delete_property(&self, name: &str) {
        self.state
            .lock()
            .expect("sandbox state")
            .hubspot_deleted_properties
            .insert(name.to_owned());
    }

    /// Every vendor's API back as documented.
    pub fn clear_drift(&self) {
        self.state.lock().expect("sandbox state").drift.clear();
    }

    /// `count` messages people wrote in a Slack channel (by id), newer than any there (no
    /// ledger entry: not our effect).
    pub fn seed_slack_messages(&self, channel_id: &str, count: usize) {
        let mut s = self.state.lock().expect("sandbox state");
        for i in 0..count {
            // As chat.postMessage numbers them: later and distinct.
            s.next_id += 1;
            let ts = format!(
                "{}.{:06}",
                chrono::Utc::now().timestamp(),
                s.next_id % 1_000_000
            );
            s.slack_messages
                .entry(channel_id.to_owned())
                .or_default()
                .push(serde_json::json!({"type": "message", "text": format!("chatter {i}"), "user": "U0PEOPLE", "ts": ts}));
        }
    }

    /// Create a Zendesk ticket the way an end user would (no ledger entry: not our effect).
    pub fn seed_zendesk_ticket(&self, id: u64, subject: &str) {
        let mut s = self.state.lock().expect("sandbox state");
        s.zendesk_tickets
            .insert(id, zendesk::new_ticket(id, subject));
    }

    pub fn zendesk_ticket(&self, id: u64) -> Option<serde_json::Value> {
        self.state
            .lock()
            .expect("sandbox state")
            .zendesk_tickets
            .get(&id)
            .cloned()
    }

    pub fn jira_issue(&self, key: &str) -> Option<serde_json::Value> {
        self.state
            .lock()
            .expect("sandbox state")
            .jira_issues
            .get(key)
            .cloned()
    }

    pub fn salesforce_case(&self, id: &str) -> Option<serde_json::Value> {
        self.state
            .lock()
            .expect("sandbox state")
            .salesforce_cases
            .get(id)
            .cloned()
    }

    /// Leave `remaining` calls of the org's daily API allowance (403 `REQUEST_LIMIT_EXCEEDED` after).
    /// Salesforce's session rules for minted tokens: they end after `max_age` or `max_calls`.
    pub fn set_salesforce_session_policy(&self, max_age: Option<Duration>, max_calls: Option<u64>) {
        let mut s = self.state.lock().expect("sandbox state");
        s.salesforce_sessions.max_age = max_age;
        s.salesforce_sessions.max_calls = max_calls;
    }

    /// An admin takes a permission away from switchyard's account or app at `vendor`.
    pub fn revoke_permission(&self, vendor: &str, permission: &str) {
        self.state
            .lock()
            .expect("sandbox state")
            .revoked_permissions
            .insert((vendor.to_owned(), permission.to_owned()));
    }

    /// An admin grants `permission` back.
    pub fn restore_permission(&self, vendor: &str, permission: &str) {
        self.state
            .lock()
            .expect("sandbox state")
            .revoked_permissions
            .remove(&(vendor.to_owned(), permission.to_owned()));
    }

    /// `vendor`'s IP allowlist starts refusing the sandbox's callers.
    pub fn block_ip(&self, vendor: &str) {
        self.state
            .lock()
            .expect("sandbox state")
            .ip_blocked
            .insert(vendor.to_owned());
    }

    /// The vendors' clocks run `secs` ahead of ours (their `Date` header says so).
    pub fn set_clock_offset(&self, secs: i64) {
        self.state.lock().expect("sandbox state").clock_offset_secs = secs;
    }

    /// The admin revokes (or restores) the connected app's approval for the integration user.
    pub fn revoke_salesforce_app(&self, revoked: bool) {
        self.state
            .lock()
            .expect("sandbox state")
            .salesforce_sessions
            .revoked = revoked;
    }

    /// Salesforce: (tokens minted, calls refused because their session had ended).
    pub fn salesforce_sessions(&self) -> (u64, u64) {
        let s = self.state.lock().expect("sandbox state");
        (s.salesforce_sessions.grants, s.salesforce_sessions.ended)
    }

    /// Zendesk: (end users, bulk job status reads).
    pub fn zendesk_users(&self) -> (usize, u64) {
        let s = self.state.lock().expect("sandbox state");
        (s.zendesk_users.by_email.len(), s.zendesk_users.job_polls)
    }

    /// Salesforce: (account queries answered, API calls counted against the daily limit).
    pub fn salesforce_counts(&self) -> (u64, u64) {
        let s = self.state.lock().expect("sandbox state");
        (s.salesforce_account_reads, s.salesforce_api_calls)
    }

    pub fn set_salesforce_remaining(&self, remaining: u64) {
        let mut s = self.state.lock().expect("sandbox state");
        s.salesforce_daily_max = s.salesforce_api_calls + remaining;
    }

    pub fn hubspot_ticket(&self, id: &str) -> Option<serde_json::Value> {
        let n: u64 = id.parse().ok()?;
        self.state
            .lock()
            .expect("sandbox state")
            .hubspot_tickets
            .get(&n)
            .cloned()
    }

    /// (company reads, 429s sent) by the HubSpot sandbox.
    pub fn hubspot_counts(&self) -> (u64, u64) {
        let s = self.state.lock().expect("sandbox state");
        (s.hubspot_company_reads, s.hubspot_limits.refused)
    }

    /// Limit HubSpot to `per_ten_seconds` requests in any trailing ten seconds.
    pub fn set_hubspot_rate_limit(&self, per_ten_seconds: Option<u32>) {
        self.state
            .lock()
            .expect("sandbox state")
            .hubspot_limits
            .window = per_ten_seconds.map(hubspot::window);
    }

    /// The Teams Workflows webhook URL (`legacy`: an incoming-webhook `webhookb2` URL).
    pub fn teams_webhook_url(&self, legacy: bool) -> String {
        let kind = if legacy { "webhookb2" } else { "workflows" };
        format!(
            "{}/{kind}/{}",
            self.base_url("teams"),
            self.credentials.teams_webhook_token
        )
    }

    /// Limit Teams webhooks to `per_second` posts (Microsoft documents about 4).
    pub fn set_teams_rate_limit(&self, per_second: Option<u32>) {
        self.state
            .lock()
            .expect("sandbox state")
            .teams_limits
            .window =
            per_second.map(|n| ratelimit::Window::new(n, std::time::Duration::from_secs(1)));
    }

    /// Limit Jira to `per_second` requests (its burst limit), Slack to `per_second` posts.
    pub fn set_jira_rate_limit(&self, per_second: Option<u32>) {
        self.state.lock().expect("sandbox state").jira_limits.window =
            per_second.map(|n| ratelimit::Window::new(n, std::time::Duration::from_secs(1)));
    }

    /// A Slack user group (`S…`) with these members (as a workspace admin would make it).
    pub fn set_slack_usergroup(&self, id: &str, members: &[&str]) {
        self.state
            .lock()
            .expect("sandbox state")
            .slack_usergroups
            .insert(
                id.to_owned(),
                members.iter().map(|m| m.to_string()).collect(),
            );
    }

    pub fn set_slack_rate_limit(&self, per_second: Option<u32>) {
        self.state
            .lock()
            .expect("sandbox state")
            .slack_limits
            .window =
            per_second.map(|n| ratelimit::Window::new(n, std::time::Duration::from_secs(1)));
    }

    /// Someone deleted the channel's webhook.
    pub fn remove_teams_webhook(&self) {
        self.state
            .lock()
            .expect("sandbox state")
            .teams_webhook_removed = true;
    }

    pub fn ledger(&self) -> Vec<LedgerEntry> {
        self.state.lock().expect("sandbox state").ledger.clone()
    }

    /// Call `hook` with every effect a faultable vendor makes, after the effect and before its
    /// answer leaves (`None`: stop). The caller of that request is still waiting for the answer.
    pub fn on_effect(&self, hook: Option<EffectFn>) {
        self.state.lock().expect("sandbox state").on_effect = hook.map(EffectHook);
    }

    /// Injected faults that requests met, by `"<vendor> <kind>"`, and Zendesk's storm 429s as
    /// `"zendesk 429 storm"` (counted from what was served, not from what was injected).
    pub fn faults_served(&self) -> std::collections::BTreeMap<String, usize> {
        let state = self.state.lock().expect("sandbox state");
        let mut served = state.faults.served();
        if state.zendesk_limits.refused > 0 {
            served.insert("zendesk 429".into(), state.zendesk_limits.refused as usize);
        }
        served
    }

    /// Limit the Zendesk API to `per_minute` requests in any trailing minute (`None`: no limit).
    pub fn set_zendesk_rate_limit(&self, per_minute: Option<u32>) {
        self.state
            .lock()
            .expect("sandbox state")
            .zendesk_limits
            .window =
            per_minute.map(|n| ratelimit::Window::new(n, std::time::Duration::from_secs(60)));
    }

    /// Answer every Zendesk request with 429 (`Retry-After: 1`) for `how_long`.
    pub fn zendesk_storm(&self, how_long: std::time::Duration) {
        self.state
            .lock()
            .expect("sandbox state")
            .zendesk_limits
            .storm_until = Some(std::time::Instant::now() + how_long);
    }

    /// Zendesk requests (allowed, refused with 429) so far.
    pub fn zendesk_requests(&self) -> (u64, u64) {
        let s = self.state.lock().expect("sandbox state");
        (s.zendesk_limits.allowed, s.zendesk_limits.refused)
    }

    /// Make `vendor`'s next `times` requests meet `fault`.
    /// Injected faults not yet used: how many requests to `vendor` have not come.
    pub fn pending_faults(&self, vendor: &str) -> usize {
        self.state
            .lock()
            .expect("sandbox state")
            .faults
            .pending(vendor)
    }

    /// Drop `vendor`'s injected faults that no request has met yet.
    pub fn clear_faults(&self, vendor: &str) {
        self.state
            .lock()
            .expect("sandbox state")
            .faults
            .clear(vendor);
    }

    pub fn inject(&self, vendor: &'static str, fault: faults::Fault, times: usize) {
        self.state
            .lock()
            .expect("sandbox state")
            .faults
            .push(vendor, fault, times);
    }

    /// Switch the stand-in LLM into a failure mode (or back to `Good`).
    pub fn set_llm_mode(&self, mode: llm::LlmMode) {
        self.state.lock().expect("sandbox state").llm_mode = mode;
    }

    pub fn llm_calls(&self) -> u64 {
        self.state.lock().expect("sandbox state").llm_calls
    }

    pub fn slack_rotations(&self) -> u64 {
        self.state.lock().expect("sandbox state").slack_rotations
    }

    pub fn stop(&self) {
        self.task.abort();
    }
}

/// Answer only requests addressed to a loopback name. A web page can resolve its own host name
/// to 127.0.0.1 (DNS rebinding) and then call a local server from the browser; its requests
/// still carry that page's `Host`, and are refused here (421).
pub async fn loopback_host_only(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let host = req
        .headers()
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    };
    if matches!(name, "127.0.0.1" | "localhost" | "::1") {
        next.run(req).await
    } else {
        (
            axum::http::StatusCode::MISDIRECTED_REQUEST,
            "this local server answers only requests addressed to 127.0.0.1, localhost or [::1]",
        )
            .into_response()
    }
}
