//! The AWS-API emulator: moto's server on a free loopback port, stopped when dropped.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use aws_config::{BehaviorVersion, Region, SdkConfig};

use crate::venv;

pub const REGION: &str = "us-east-1";

pub struct Emulator {
    child: Child,
    pub endpoint: String,
}

/// One fidelity fix on the pinned moto, in both modes. In Secrets Manager, the version that holds
/// AWSCURRENT is the current one: moving the label with `UpdateSecretVersionStage` (a rotation's
/// finishSecret) makes the next `PutSecretValue` demote *that* version. moto 5.2.5 keeps its own
/// "default version" and does not move it with the label, so after a rotation a refresh leaves two
/// versions labelled AWSCURRENT and drops AWSPENDING from the wrong one. Moving the default with
/// the label makes moto answer as AWS does; nothing else is changed.
const FIDELITY: &str = r#"from moto.secretsmanager.models import SecretsManagerBackend as _B
_update = _B.update_secret_version_stage
def _moved(self, secret_id, version_stage, remove_from_version_id, move_to_version_id):
    out = _update(self, secret_id, version_stage, remove_from_version_id, move_to_version_id)
    if version_stage == 'AWSCURRENT' and move_to_version_id:
        self.secrets[secret_id].default_version_id = move_to_version_id
    return out
_B.update_secret_version_stage = _moved
"#;

/// The emulator ends with the process that started it, however that ends (a `kill -9` of
/// `switchyard local` runs no destructor): it watches its parent and exits when it is gone.
const WATCH_PARENT: &str = r#"import os as _os, threading as _t, time as _time
_parent = _os.getppid()
def _watch():
    while _os.getppid() == _parent:
        _time.sleep(0.5)
    _os._exit(0)
_t.Thread(target=_watch, daemon=True).start()
"#;

/// Every AWS request the emulator serves, counted by service and operation (`dynamodb.PutItem`,
/// `sqs.SendMessage`, `secretsmanager.GetSecretValue`), so a test or a bench can say exactly
/// which AWS calls a piece of work made: `GET /_switchyard/requests` reads the counts, `DELETE`
/// reads and clears them. Only the request line and headers are read; the body is moto's.
const REQUEST_COUNTER: &str = r#"import json as _json, threading as _th
_counts = {}
_lock = _th.Lock()
_services = {'DynamoDB_20120810': 'dynamodb', 'AmazonSQS': 'sqs', 'secretsmanager': 'secretsmanager'}
def _operation(environ):
    target = environ.get('HTTP_X_AMZ_TARGET', '')
    if '.' in target:
        service, op = target.split('.', 1)
        return _services.get(service, service) + '.' + op
    parts = environ.get('PATH_INFO', '').split('/')
    if len(parts) > 5 and parts[1] == 'service' and parts[3] == 'operation':
        return 'cloudwatch.' + parts[4]
    return 'other.' + environ.get('REQUEST_METHOD', '')
def _counting(app):
    def serve(environ, start_response):
        if environ.get('PATH_INFO') == '/_switchyard/requests':
            with _lock:
                body = _json.dumps(_counts).encode()
                if environ.get('REQUEST_METHOD') == 'DELETE':
                    _counts.clear()
            start_response('200 OK', [('Content-Type', 'application/json'), ('Content-Length', str(len(body)))])
            return [body]
        op = _operation(environ)
        with _lock:
            _counts[op] = _counts.get(op, 0) + 1
        return app(environ, start_response)
    return serve
"#;

/// moto's own WSGI app, threaded (as `moto_server` serves it) or one request at a time. DynamoDB
/// makes each conditional write atomic; moto's threaded server does not (no lock around
/// check-and-write), so tests of contention on one item — the shared rate limiter — serialize.
fn server_script(threaded: bool) -> String {
    format!(
        "{WATCH_PARENT}{FIDELITY}{REQUEST_COUNTER}from werkzeug.serving import run_simple\n\
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app\n\
run_simple('127.0.0.1', 0, _counting(DomainDispatcherApplication(create_backend_app)), threaded={})\n",
        if threaded { "True" } else { "False" }
    )
}

impl Emulator {
    /// moto's server, threaded.
    pub fn start() -> Result<Self> {
        venv::ensure()?;
        let mut cmd = Command::new(venv::venv_dir().join("bin").join("python"));
        cmd.args(["-c", &server_script(true)]);
        Self::spawn(cmd)
    }

    /// moto serving one request at a time: conditional writes are atomic, as in DynamoDB. Not
    /// for SQS long polling (one waiting receive would hold every other call).
    pub fn start_serial() -> Result<Self> {
        venv::ensure()?;
        let mut cmd = Command::new(venv::venv_dir().join("bin").join("python"));
        cmd.args(["-c", &server_script(false)]);
        Self::spawn(cmd)
    }

    fn spawn(mut cmd: Command) -> Result<Self> {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting moto_server")?;
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, rx) = mpsc::channel();
        // Keep draining stderr for the server's whole life, or it blocks on a full pipe.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("Running on http://127.0.0.1:").nth(1) {
                    if let (Some(t), Ok(port)) = (tx.take(), rest.trim().parse::<u16>()) {
                        let _ = t.send(port);
                    }
                }
                if std::env::var_os("SWITCHYARD_EMULATOR_LOG").is_some() {
                    eprintln!("moto: {line}");
                }
            }
        });
        let port = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(port) => port,
            Err(_) => {
                let _ = child.kill();
                bail!("moto_server did not report its port within 30 s");
            }
        };
        Ok(Self {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        })
    }

    /// SDK configuration pointing every client at the emulator, with dummy credentials.
    pub async fn sdk_config(&self) -> SdkConfig {
        sdk_config(&self.endpoint).await
    }

    /// The AWS requests served since the counts were last taken, by `service.Operation`; the
    /// counts start again from zero.
    pub async fn take_requests(&self) -> Result<BTreeMap<String, u64>> {
        requests(&self.endpoint).await
    }
}

/// [`Emulator::take_requests`] for an emulator known by its endpoint (a worker's, a bench's).
pub async fn requests(endpoint: &str) -> Result<BTreeMap<String, u64>> {
    let url = format!("{endpoint}/_switchyard/requests");
    let counts = reqwest::Client::new()
        .delete(url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .context("reading the emulator's request counts")?
        .json()
        .await
        .context("the emulator's request counts are not JSON")?;
    Ok(counts)
}

pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(REGION))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "switchyard-local",
        ))
        .load()
        .await
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHILD: &str = "SWITCHYARD_ORPHAN_TEST_CHILD";

    /// A process that started the emulator is killed with SIGKILL (no destructor runs): the
    /// emulator goes with it instead of running on as an orphan.
    #[test]
    fn the_emulator_does_not_outlive_a_killed_parent() {
        if std::env::var_os(CHILD).is_some() {
            let e = Emulator::start().unwrap();
            println!("endpoint {}", e.endpoint);
            std::thread::sleep(Duration::from_secs(120));
            return;
        }
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "emulator::tests::the_emulator_does_not_outlive_a_killed_parent",
                "--nocapture",
            ])
            .env(CHILD, "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        let endpoint = out
            .lines()
            .map_while(Result::ok)
            .find_map(|l| l.split("endpoint http://").nth(1).map(str::to_owned))
            .expect("the child reports its emulator");
        let addr: std::net::SocketAddr = endpoint.trim().parse().unwrap();
        assert!(std::net::TcpStream::connect(addr).is_ok(), "emulator up");
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let gone = (0..50).any(|_| {
            std::thread::sleep(Duration::from_millis(100));
            std::net::TcpStream::connect(addr).is_err()
        });
        assert!(gone, "the emulator at {addr} outlived its parent");
    }
}
