//! switchyard's local stack: the AWS-API emulator (moto), provisioning from `template.yaml`, the
//! SaaS sandbox, and the runner that hosts the Lambda handlers in-process the way the Lambda
//! service would. The `switchyard` CLI and the end-to-end tests both drive it.

pub mod batch;
pub mod bench;
pub mod coldstart;
pub mod console;
pub mod cost;
pub mod demo;
pub mod emulator;
pub mod fixtures;
pub mod flood;
mod local_credentials;
pub mod ops;
pub mod people;
pub mod provision;
pub mod redrive;
pub mod replay;
pub mod review;
pub mod runner;
/// The SaaS sandbox, its own crate (`infra/sandbox`).
pub use switchyard_sandbox as sandbox;
pub mod smoke;
pub mod soak;
pub mod stack;
pub mod template;
/// The repository checked as a whole: the template, the alarms, the docs, the module graph.
#[cfg(test)]
mod tests;
pub mod venv;
pub mod workers;

/// The repository root (this crate lives in `infra/`).
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("infra/ has a parent")
        .to_path_buf()
}
