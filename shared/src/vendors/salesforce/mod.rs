//! Salesforce: everything switchyard knows about it, in one place.
//!
//! - `inbound`: outbound messages (SOAP, the endpoint token);
//! - `outbound`: the REST connector (cases by external id, comments) and its triage;
//! - `sync`: Bulk API upserts of contacts.

pub mod inbound;
pub mod outbound;
pub mod sync;
