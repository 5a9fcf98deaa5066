//! The project-local Python venv that holds the pinned emulator (`.venv/`, from
//! `infra/requirements.txt`). Created on first use; a marker file records what was installed.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::repo_root;

pub fn venv_dir() -> PathBuf {
    std::env::var_os("SWITCHYARD_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv"))
}

pub fn moto_server() -> PathBuf {
    venv_dir().join("bin").join("moto_server")
}

/// Make sure the venv exists and holds exactly the pinned requirements.
pub fn ensure() -> Result<PathBuf> {
    let dir = venv_dir();
    let requirements = repo_root().join("infra").join("requirements.txt");
    let wanted = std::fs::read_to_string(&requirements)
        .with_context(|| format!("reading {}", requirements.display()))?;
    let marker = dir.join(".switchyard-requirements");
    if moto_server().exists()
        && std::fs::read_to_string(&marker).ok().as_deref() == Some(wanted.as_str())
    {
        return Ok(dir);
    }
    // Serialize concurrent installers (parallel test processes) with an exclusive lock directory.
    let lock = repo_root().join(".venv.lock");
    let _guard = DirLock::acquire(&lock)?;
    if moto_server().exists()
        && std::fs::read_to_string(&marker).ok().as_deref() == Some(wanted.as_str())
    {
        return Ok(dir);
    }
    eprintln!(
        "switchyard: installing the pinned AWS emulator into {} (first run only)…",
        dir.display()
    );
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    run(
        Command::new(&python).arg("-m").arg("venv").arg(&dir),
        "create the venv (is python3-venv installed?)",
    )?;
    run(
        Command::new(dir.join("bin").join("pip"))
            .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(&requirements),
        "install infra/requirements.txt",
    )?;
    std::fs::write(&marker, wanted)?;
    Ok(dir)
}

fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("could not start the command to {what}"))?;
    if !status.success() {
        bail!("failed to {what} ({status})");
    }
    Ok(())
}

struct DirLock(PathBuf);

impl DirLock {
    fn acquire(path: &std::path::Path) -> Result<Self> {
        for _ in 0..1200 {
            match std::fs::create_dir(path) {
                Ok(()) => return Ok(DirLock(path.to_path_buf())),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    std::thread::sleep(std::time::Duration::from_millis(250))
                }
                Err(e) => return Err(e).context("creating the venv lock"),
            }
        }
        bail!(
            "timed out waiting for {} (remove it if no install is running)",
            path.display()
        )
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}
