//! switchyard's local stack: the AWS-API emulator (moto), provisioning from `template.yaml`, the
//! SaaS sandbox, and the runner that hosts the Lambda handlers in-process the way the Lambda
//! service would. The `switchyard` CLI and the end-to-end tests both drive it.

// The operator tools: they talk to a deployed stack (or a local one, through its exports).
pub mod fixtures;
pub mod ops;
pub mod people;
pub mod redrive;
pub mod replay;
pub mod review;
pub mod smoke;
pub mod template;

// The local stack and what runs on it (the `local` feature).
#[cfg(feature = "local")]
pub mod batch;
#[cfg(feature = "local")]
pub mod bench;
#[cfg(feature = "local")]
pub mod coldstart;
#[cfg(feature = "local")]
pub mod console;
#[cfg(feature = "local")]
pub mod cost;
#[cfg(feature = "local")]
pub mod demo;
#[cfg(feature = "local")]
pub mod emulator;
#[cfg(feature = "local")]
pub mod flood;
#[cfg(feature = "local")]
mod local_credentials;
#[cfg(feature = "local")]
pub mod provision;
#[cfg(feature = "local")]
pub mod runner;
/// The SaaS sandbox, its own crate (`infra/sandbox`).
#[cfg(feature = "local")]
pub use switchyard_sandbox as sandbox;
#[cfg(feature = "local")]
pub mod soak;
#[cfg(feature = "local")]
pub mod stack;
/// The repository checked as a whole: the template, the alarms, the docs, the module graph.
#[cfg(all(test, feature = "local"))]
mod tests;
#[cfg(feature = "local")]
pub mod venv;
#[cfg(feature = "local")]
pub mod workers;

/// The repository root (this crate lives in `infra/`).
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("infra/ has a parent")
        .to_path_buf()
}
