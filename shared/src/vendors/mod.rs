//! One folder per vendor, holding everything about it: how its webhooks are verified and
//! normalized (`inbound`), how its API is called and its answers read (`outbound`: actions,
//! triage, contract, probe, grants), and its bulk sync when it has one.

pub mod github;
pub mod hubspot;
pub mod jira;
pub mod salesforce;
pub mod slack;
pub mod standard_webhooks;
pub mod stripe;
pub mod teams;
pub mod twilio;
pub mod zendesk;
