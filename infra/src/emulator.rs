//! The AWS-API emulator: moto's server on a free loopback port, stopped when dropped.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use aws_config::{Region, SdkConfig};

use crate::venv;

pub const REGION: &str = "us-east-1";

pub struct Emulator {
    child: Child,
    pub endpoint: String,
    /// With IAM enforced: the administrator's key, which provisioning and the operator tools
    /// use (the functions get keys of their own, see `provision::function_users`).
    pub admin: Option<AccessKey>,
}

/// An IAM access key on the emulator (local, throwaway: it opens nothing outside it).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct AccessKey {
    pub id: String,
    pub secret: String,
}

/// The user provisioning and the operator tools run as when IAM is enforced.
pub const ADMIN_USER: &str = "switchyard-local-admin";

/// moto decides most services' requests on the action alone: it matches a statement's
/// `Resource` against `*` for every service but SQS and S3, so a grant on one table would allow
/// no table at all, and a grant on every table the same. These give DynamoDB, Secrets Manager,
/// KMS and CloudWatch Logs requests the ARN AWS authorizes them on (the table or its index, the
/// secret, the key — for Decrypt, the key its ciphertext names —, the log group or stream), so
/// a grant on the wrong resource is refused here as it is on AWS; and SQS batch calls are
/// authorized as their single action, as AWS does (moto asks for an `sqs:DeleteMessageBatch`
/// no policy can grant). Nothing else about moto's evaluation changes: condition keys it does
/// not know (`dynamodb:LeadingKeys`, `kms:ViaService`) still pass; tests read those.
const IAM_FIDELITY: &str = r#"import base64 as _b64
from moto.dynamodb.responses import DynamoHandler as _Ddb
from moto.secretsmanager.responses import SecretsManagerResponse as _Sm
from moto.kms.responses import KmsResponse as _Kms
def _ddb_resource(self):
    body = getattr(self, 'params', None) or {}
    name = body.get('TableName')
    if not name:
        return '*'
    arn = name if name.startswith('arn:') else 'arn:aws:dynamodb:%s:%s:table/%s' % (self.region, self.current_account, name)
    index = body.get('IndexName')
    return arn + '/index/' + index if index else arn
def _sm_resource(self):
    sid = self._get_param('SecretId') or self._get_param('Name')
    if not sid:
        return '*'
    found = self.backend.secrets.get(sid)
    if found is not None:
        return found.arn
    return sid if sid.startswith('arn:') else 'arn:aws:secretsmanager:%s:%s:secret:%s' % (self.region, self.current_account, sid)
def _kms_resource(self):
    try:
        key = self._get_param('KeyId')
        if not key and self._get_param('CiphertextBlob'):
            from moto.kms.utils import _deserialize_ciphertext_blob
            key = _deserialize_ciphertext_blob(_b64.b64decode(self._get_param('CiphertextBlob'))).key_id
        if not key:
            return '*'
        return self.kms_backend.describe_key(self.kms_backend.any_id_to_key_id(key)).arn
    except Exception:
        return '*'
# SQS authorizes a batch call as its single action (there is no sqs:DeleteMessageBatch grant).
from moto.iam.access_control import IAMRequestBase as _Req
_req_init = _Req.__init__
_batch = {'sqs:DeleteMessageBatch': 'sqs:DeleteMessage', 'sqs:SendMessageBatch': 'sqs:SendMessage', 'sqs:ChangeMessageVisibilityBatch': 'sqs:ChangeMessageVisibility'}
def _req_init_single(self, *args, **kwargs):
    _req_init(self, *args, **kwargs)
    self._action = _batch.get(self._action, self._action)
_Req.__init__ = _req_init_single
from moto.logs.responses import LogsResponse as _Logs
def _logs_resource(self):
    group = self._get_param('logGroupName')
    if not group:
        return '*'
    arn = 'arn:aws:logs:%s:%s:log-group:%s' % (self.region, self.current_account, group)
    stream = self._get_param('logStreamName')
    return arn + ':log-stream:' + stream if stream else arn + ':*'
_Logs._determine_resource = _logs_resource
_Ddb._determine_resource = _ddb_resource
_Sm._determine_resource = _sm_resource
_Kms._determine_resource = _kms_resource
"#;

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

/// Two of moto's costs that change no answer, taken out (about a seventh of the emulator's CPU
/// in the test suite, measured with py-spy): it lists its own package directory from disk on
/// every request to find the service a host names (the list never changes while it runs), and
/// it logs every request line to stderr, read only with `SWITCHYARD_EMULATOR_LOG` set (its
/// start line, which says the port, and its errors are still logged).
const SPEED: &str = r#"import os as _speed_os, moto.backends as _moto_backends
from werkzeug.serving import WSGIRequestHandler as _Wsgi
_moto_modules = tuple(_moto_backends.list_of_moto_modules())
_moto_backends.list_of_moto_modules = lambda: _moto_modules
_Wsgi.disable_nagle_algorithm = True
if not _speed_os.environ.get('SWITCHYARD_EMULATOR_LOG'):
    _Wsgi.log_request = lambda self, *args, **kwargs: None
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

/// SQS's clock, which a test moves forward (`POST /_switchyard/clock?advance=SECONDS`,
/// [`Emulator::advance_sqs_clock`]): message delays and visibility timeouts run out without
/// being waited for, so a wait of 30 s or 15 min is tested as itself, not set to zero.
const SQS_CLOCK: &str = r#"import moto.sqs.models as _sqs_models
_sqs_clock = [0.0]
_sqs_time, _sqs_time_ms = _sqs_models.unix_time, _sqs_models.unix_time_millis
def _sqs_now(dt=None):
    return _sqs_time(dt) + (_sqs_clock[0] if dt is None else 0)
def _sqs_now_ms(dt=None):
    return _sqs_time_ms(dt) + (_sqs_clock[0] * 1000 if dt is None else 0)
_sqs_models.unix_time = _sqs_now
_sqs_models.unix_time_millis = _sqs_now_ms
"#;

/// Textract as moto plays it, with two fidelity fixes and one way to say what a page reads.
/// moto 5.2.5 answers every `DetectDocumentText` with the same canned blocks (none) and a
/// `DocumentMetadata.Pages` that is an object, where AWS sends a number the SDK insists on: the
/// number is put right. AWS refuses a document over 10 MB (`DocumentTooLargeException`) and a
/// PDF of more than one page (`UnsupportedDocumentException`) in this synchronous call; moto
/// takes anything: both are refused as AWS does. A test says what a document's page reads
/// (`POST /_switchyard/textract {"sha256", "lines"}`, [`Emulator::ocr_reads`]); moto's
/// own answer stays for any other document. IAM is checked before any of this, by moto.
const TEXTRACT: &str = r#"import base64 as _tx_b64, hashlib as _tx_hash, json as _tx_json, re as _tx_re
from moto.textract.models import TextractBackend as _Tx
from moto.textract.responses import TextractResponse as _TxR
from moto.core.exceptions import JsonRESTError as _TxError
_Tx.PAGES = 1
_ocr_pages = {}
_tx_detect = _TxR.detect_document_text
def _tx_detect_as_aws(self):
    raw = (_tx_json.loads(self.body or '{}').get('Document') or {}).get('Bytes')
    if not raw:
        return _tx_detect(self)
    data = _tx_b64.b64decode(raw)
    if len(data) > 10 * 1024 * 1024:
        raise _TxError('DocumentTooLargeException', 'Document size exceeds the limit for synchronous operations')
    if data.startswith(b'%PDF') and len(_tx_re.findall(rb'/Type\s*/Page(?![A-Za-z])', data)) > 1:
        raise _TxError('UnsupportedDocumentException', 'Request has unsupported document format')
    lines = _ocr_pages.get(_tx_hash.sha256(data).hexdigest())
    if lines is None:
        return _tx_detect(self)
    blocks = [{'BlockType': 'PAGE', 'Id': 'page-1', 'Confidence': 99.9, 'Page': 1}]
    blocks += [{'BlockType': 'LINE', 'Id': 'line-%d' % n, 'Text': t, 'Confidence': 99.1, 'Page': 1} for n, t in enumerate(lines)]
    return _tx_json.dumps({'Blocks': blocks, 'DetectDocumentTextModelVersion': '1.0', 'DocumentMetadata': {'Pages': 1}})
_TxR.detect_document_text = _tx_detect_as_aws
"#;

/// Every AWS request the emulator serves, counted by service and operation (`dynamodb.PutItem`,
/// `sqs.SendMessage`, `secretsmanager.GetSecretValue`), so a test or a bench can say exactly
/// which AWS calls a piece of work made — and what DynamoDB would bill for them: write units
/// (the larger of the item before and after, per started KB, charged for a failed condition
/// too), read units (per started 4 KB; half for eventually consistent reads), and the largest item
/// written, by table; and which
/// SQS receives brought messages (the rest are a poller's idle cost). Item sizes are moto's
/// (attribute names plus values, numbers as their digits): close to DynamoDB's, not identical.
/// `GET /_switchyard/requests` reads, `DELETE` reads and clears.
const REQUEST_COUNTER: &str = r#"import io as _io, json as _json, math as _math, threading as _th
_usage = {'requests': {}, 'write_units': {}, 'read_units': {}, 'largest_item': {}, 'denied': {}}
_lock = _th.Lock()
_write_lock = _th.Lock()
_services = {'DynamoDB_20120810': 'dynamodb', 'AmazonSQS': 'sqs', 'secretsmanager': 'secretsmanager', 'Logs_20140328': 'logs', 'Textract': 'textract'}
def _add(kind, key, n):
    with _lock:
        _usage[kind][key] = _usage[kind].get(key, 0) + n
def _operation(environ):
    target = environ.get('HTTP_X_AMZ_TARGET', '')
    if '.' in target:
        service, op = target.split('.', 1)
        return _services.get(service, service) + '.' + op
    parts = environ.get('PATH_INFO', '').split('/')
    if len(parts) > 5 and parts[1] == 'service' and parts[3] == 'operation':
        return 'cloudwatch.' + parts[4]
    return 'other.' + environ.get('REQUEST_METHOD', '')
def _ddb_table(name):
    from moto.dynamodb.models import dynamodb_backends
    from moto.core import DEFAULT_ACCOUNT_ID
    return dynamodb_backends[DEFAULT_ACCOUNT_ID]['us-east-1'].get_table(name)
def _item_size(attrs):
    from moto.dynamodb.models.dynamo_type import DynamoType
    return sum(len(k.encode()) + DynamoType(v).size() for k, v in attrs.items())
def _stored_size(req):
    try:
        t = _ddb_table(req['TableName'])
        keys = req.get('Key') or {k: req['Item'][k] for k in (t.hash_key_attr, t.range_key_attr) if k}
        from moto.dynamodb.models.dynamo_type import DynamoType
        rk = keys.get(t.range_key_attr) if t.range_key_attr else None
        item = t.get_item(DynamoType(keys[t.hash_key_attr]), DynamoType(rk) if rk else None)
        return item.size() if item else 0
    except Exception:
        return 0
def _logical(table):
    return table.rsplit('-', 1)[-1]
def _counting(app):
    def serve(environ, start_response):
        if environ.get('PATH_INFO') == '/_switchyard/clock' and environ.get('REQUEST_METHOD') == 'POST':
            from urllib.parse import parse_qs
            _sqs_clock[0] += float(parse_qs(environ.get('QUERY_STRING', '')).get('advance', ['0'])[0])
            body = _json.dumps({'sqs_offset_seconds': _sqs_clock[0]}).encode()
            start_response('200 OK', [('Content-Type', 'application/json'), ('Content-Length', str(len(body)))])
            return [body]
        if environ.get('PATH_INFO') == '/_switchyard/textract' and environ.get('REQUEST_METHOD') == 'POST':
            said = _json.loads(environ['wsgi.input'].read(int(environ.get('CONTENT_LENGTH') or 0)) or b'{}')
            _ocr_pages[said['sha256']] = list(said['lines'])
            start_response('204 No Content', [])
            return [b'']
        if environ.get('PATH_INFO') == '/_switchyard/requests':
            global _usage
            with _lock:
                body = _json.dumps(_usage).encode()
                if environ.get('REQUEST_METHOD') == 'DELETE':
                    _usage = {'requests': {}, 'write_units': {}, 'read_units': {}, 'largest_item': {}, 'denied': {}}
            start_response('200 OK', [('Content-Type', 'application/json'), ('Content-Length', str(len(body)))])
            return [body]
        op = _operation(environ)
        # Log delivery is Lambda's own (the local runner plays it), billed by the GB ingested:
        # not a request the functions make, so not counted as one.
        if not op.startswith('logs.'):
            _add('requests', op, 1)
        auth = environ.get('HTTP_AUTHORIZATION', '')
        caller = auth.split('Credential=', 1)[1].split('/', 1)[0] if 'Credential=' in auth else '-'
        def _start(status, headers, *rest, _respond=start_response):
            # What IAM refused, and to whom (the access key id): a missing grant, named.
            if status.startswith('403'):
                _add('denied', op + ' ' + caller, 1)
            return _respond(status, headers, *rest)
        start_response = _start
        measure = op in ('dynamodb.PutItem', 'dynamodb.UpdateItem', 'dynamodb.DeleteItem', 'dynamodb.GetItem', 'dynamodb.Query', 'dynamodb.Scan') or op == 'sqs.ReceiveMessage'
        if not measure:
            return app(environ, start_response)
        raw = environ['wsgi.input'].read(int(environ.get('CONTENT_LENGTH') or 0))
        environ['wsgi.input'] = _io.BytesIO(raw)
        req = _json.loads(raw or b'{}')
        if op in ('dynamodb.PutItem', 'dynamodb.UpdateItem', 'dynamodb.DeleteItem'):
            # DynamoDB checks a condition and writes as one step; moto's threaded server does
            # not, so two racing conditional writes could both pass. One write at a time.
            with _write_lock:
                before = _stored_size(req)
                out = b''.join(app(environ, start_response))
        else:
            before = 0
            out = b''.join(app(environ, start_response))
        if op == 'sqs.ReceiveMessage':
            if b'"Messages"' in out:
                _add('requests', 'sqs.ReceiveMessage(with messages)', 1)
            return [out]
        table = _logical(req.get('TableName', '?')) + ' ' + op.split('.', 1)[1]
        if op in ('dynamodb.PutItem', 'dynamodb.UpdateItem', 'dynamodb.DeleteItem'):
            size = max(before, _stored_size(req))
            _add('write_units', table, max(1, _math.ceil(size / 1024)))
            with _lock:
                _usage['largest_item'][table] = max(size, _usage['largest_item'].get(table, 0))
        else:
            try:
                answer = _json.loads(out or b'{}')
            except ValueError:
                answer = {}
            items = [answer['Item']] if 'Item' in answer else answer.get('Items', [])
            size = sum(_item_size(i) for i in items)
            units = max(1, _math.ceil(size / 4096)) / (1 if req.get('ConsistentRead') else 2)
            _add('read_units', table, units)
        return [out]
    return serve
"#;

/// moto's own WSGI app, threaded (as `moto_server` serves it) or one request at a time. DynamoDB
/// makes each conditional write atomic; moto's threaded server does not (no lock around
/// check-and-write): the counting middleware serializes DynamoDB's item writes, and tests of
/// heavy contention on one item (the shared rate limiter) also run one request at a time.
fn server_script(threaded: bool) -> String {
    format!(
        "{WATCH_PARENT}{SPEED}{FIDELITY}{IAM_FIDELITY}{SQS_CLOCK}{TEXTRACT}{REQUEST_COUNTER}from werkzeug.serving import run_simple\n\
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

    /// moto's server, threaded, enforcing IAM as AWS does: every request after the first three
    /// (which create [`ADMIN_USER`] and its key) must be signed by a key of a user whose
    /// policies allow it. [`sdk_config`](Self::sdk_config) then signs as that administrator.
    pub async fn start_enforcing_iam() -> Result<Self> {
        venv::ensure()?;
        let mut cmd = Command::new(venv::venv_dir().join("bin").join("python"));
        cmd.args(["-c", &server_script(true)])
            .env("INITIAL_NO_AUTH_ACTION_COUNT", "3");
        let mut emulator = Self::spawn(cmd)?;
        let iam = aws_sdk_iam::Client::new(&sdk_config(&emulator.endpoint).await);
        let admin = iam_user(
            &iam,
            ADMIN_USER,
            &serde_json::json!({"Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}),
        )
        .await
        .context("creating the emulator's administrator")?;
        emulator.admin = Some(admin);
        Ok(emulator)
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
            admin: None,
        })
    }

    /// SDK configuration pointing every client at the emulator, as its administrator when IAM
    /// is enforced (else with dummy credentials, which moto then accepts).
    pub async fn sdk_config(&self) -> SdkConfig {
        match &self.admin {
            Some(key) => sdk_config_as(&self.endpoint, Some(key)).await,
            None => sdk_config(&self.endpoint).await,
        }
    }

    /// The AWS requests served since the counts were last taken, by `service.Operation`; the
    /// counts start again from zero.
    pub async fn take_requests(&self) -> Result<BTreeMap<String, u64>> {
        Ok(usage(&self.endpoint).await?.requests)
    }

    /// Requests, DynamoDB units and SQS receives since last taken (and start again from zero).
    pub async fn take_usage(&self) -> Result<Usage> {
        usage(&self.endpoint).await
    }

    /// The requests IAM refused since the counts were last taken (the counts are kept).
    pub async fn denied(&self) -> Result<BTreeMap<String, u64>> {
        Ok(read_usage(&self.endpoint, reqwest::Method::GET)
            .await?
            .denied)
    }
}

/// What the emulator served, as AWS would bill it (see `REQUEST_COUNTER`).
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct Usage {
    /// By `service.Operation`; `sqs.ReceiveMessage(with messages)` counts the receives that
    /// brought at least one message (they are in `sqs.ReceiveMessage` too).
    pub requests: BTreeMap<String, u64>,
    /// DynamoDB write units by table (logical id) and operation: `DecisionsTable UpdateItem`.
    pub write_units: BTreeMap<String, f64>,
    /// DynamoDB read units by table (logical id) and operation.
    pub read_units: BTreeMap<String, f64>,
    /// The largest item a write left (or found), in bytes, by table and operation: what a unit
    /// per started KB was charged on.
    #[serde(default)]
    pub largest_item: BTreeMap<String, u64>,
    /// Requests IAM refused (403), by `service.Operation` and the caller's access key id.
    #[serde(default)]
    pub denied: BTreeMap<String, u64>,
}

impl Emulator {
    /// Move SQS's clock forward by `by`: delayed messages and visibility timeouts due within it
    /// come due now (DynamoDB and the functions keep the real time).
    pub async fn advance_sqs_clock(&self, by: std::time::Duration) -> Result<()> {
        let url = format!(
            "{}/_switchyard/clock?advance={}",
            self.endpoint,
            by.as_secs_f64()
        );
        reqwest::Client::new()
            .post(url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .context("moving the emulator's SQS clock")?;
        Ok(())
    }

    /// Say what Textract reads on `document` (one page): `lines`, in order. Any other document
    /// gets moto's own answer (no text).
    pub async fn ocr_reads(&self, document: &[u8], lines: &[&str]) -> Result<()> {
        use sha2::Digest;
        reqwest::Client::new()
            .post(format!("{}/_switchyard/textract", self.endpoint))
            .json(&serde_json::json!({
                "sha256": hex::encode(sha2::Sha256::digest(document)),
                "lines": lines,
            }))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .context("telling the emulator what a page reads")?;
        Ok(())
    }
}

/// [`Emulator::take_usage`] for an emulator known by its endpoint (a worker's, a bench's).
pub async fn usage(endpoint: &str) -> Result<Usage> {
    read_usage(endpoint, reqwest::Method::DELETE).await
}

/// The counts: `GET` keeps them, `DELETE` starts them again from zero.
async fn read_usage(endpoint: &str, method: reqwest::Method) -> Result<Usage> {
    let url = format!("{endpoint}/_switchyard/requests");
    let usage = reqwest::Client::new()
        .request(method, url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .context("reading the emulator's request counts")?
        .json()
        .await
        .context("the emulator's request counts are not JSON")?;
    Ok(usage)
}

/// SDK configuration for the emulator at `endpoint`, with dummy credentials.
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    sdk_config_as(endpoint, None).await
}

/// SDK configuration for the emulator at `endpoint`, signing with `key` (dummy credentials
/// without one).
pub async fn sdk_config_as(endpoint: &str, key: Option<&AccessKey>) -> SdkConfig {
    let (id, secret) = key.map_or(("testing", "testing"), |k| {
        (k.id.as_str(), k.secret.as_str())
    });
    switchyard::aws::config_loader()
        .endpoint_url(endpoint)
        .region(Region::new(REGION))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            id,
            secret,
            None,
            None,
            "switchyard-local",
        ))
        .load()
        .await
}

/// Create an IAM user with one inline policy and an access key for it.
pub async fn iam_user(
    iam: &aws_sdk_iam::Client,
    name: &str,
    policy: &serde_json::Value,
) -> Result<AccessKey> {
    iam.create_user()
        .user_name(name)
        .send()
        .await
        .with_context(|| format!("creating IAM user {name}"))?;
    iam.put_user_policy()
        .user_name(name)
        .policy_name(name)
        .policy_document(policy.to_string())
        .send()
        .await
        .with_context(|| format!("attaching {name}'s policy"))?;
    let key = iam
        .create_access_key()
        .user_name(name)
        .send()
        .await
        .with_context(|| format!("creating {name}'s access key"))?
        .access_key
        .context("CreateAccessKey answered without a key")?;
    Ok(AccessKey {
        id: key.access_key_id,
        secret: key.secret_access_key,
    })
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

    /// As on DynamoDB, of many writers racing to create one item under
    /// `attribute_not_exists`, exactly one succeeds: moto's threaded server checked and wrote in
    /// two steps, so two could (a decision test once saw both a button and the CLI "win").
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn racing_conditional_writes_on_one_item_let_exactly_one_through() {
        use aws_sdk_dynamodb::types::{
            AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
            ScalarAttributeType,
        };
        let e = Emulator::start().unwrap();
        let ddb = aws_sdk_dynamodb::Client::new(&e.sdk_config().await);
        ddb.create_table()
            .table_name("race")
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("id")
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .unwrap(),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("id")
                    .key_type(KeyType::Hash)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        for round in 0..60 {
            let id = format!("item-{round}");
            let writers = (0..24).map(|w| {
                let ddb = ddb.clone();
                let id = id.clone();
                tokio::spawn(async move {
                    ddb.update_item()
                        .table_name("race")
                        .key("id", AttributeValue::S(id))
                        .update_expression("SET winner = :w")
                        .condition_expression("attribute_not_exists(winner)")
                        .expression_attribute_values(":w", AttributeValue::N(w.to_string()))
                        .send()
                        .await
                        .is_ok()
                })
            });
            let wins = futures::future::join_all(writers)
                .await
                .into_iter()
                .filter(|won| *won.as_ref().unwrap())
                .count();
            assert_eq!(
                wins, 1,
                "round {round}: {wins} writers passed the condition"
            );
        }
    }

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
