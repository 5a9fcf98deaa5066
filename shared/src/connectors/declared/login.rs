//! Session login: the description's login request, filled from the connection secret's fields
//! (`{secret.username}`), whose answer holds a session token (and maybe its life). It runs where
//! OAuth refreshes run — under the connection's lease, once across every worker — and its
//! result is stored in the secret like a minted token.

use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use super::describe::Auth;
use crate::connectors::auth::AuthError;
use crate::connectors::triage::{Kind, Refusal, Response};

/// Log in for the session-login credential `current` (its JSON) of `connector`: the credential
/// with `access_token`, `issued_at` and `expires_at` replaced.
pub async fn login(
    http: &reqwest::Client,
    secret_id: &str,
    connector: &str,
    current: &SecretString,
) -> Result<Value, AuthError> {
    let transient = |reason: String| AuthError::transient(secret_id, reason);
    let described = super::get(connector)
        .ok_or_else(|| transient(format!("no connector description is named {connector:?}")))?;
    let Auth::SessionLogin {
        login,
        token,
        expires_in,
        max_session_age,
        ..
    } = described.description.auth.get_ref()
    else {
        return Err(transient(format!(
            "{connector} does not log in with a session"
        )));
    };
    let mut next: Value = serde_json::from_str(current.expose_secret())
        .map_err(|e| transient(format!("stored credential is not JSON: {e}")))?;
    let credential = crate::secrets::Credential::parse(secret_id, current)?;
    // The login itself is not signed: a connector over a credential with no token yet.
    let unsigned = super::Declared {
        described,
        http: http.clone(),
        base_url: super::base_url(described, &credential).ok_or_else(|| {
            transient(format!(
                "{connector} has no base URL (secret or description)"
            ))
        })?,
        sign: super::Sign::None,
    };
    let fields = next.clone();
    let value = |n: &str| -> Option<String> {
        let v = fields.get(n.strip_prefix("secret.")?)?;
        v.as_str()
            .map(str::to_owned)
            .or_else(|| Some(v.to_string()))
    };
    let req = unsigned
        .request(login, &value, None)
        .map_err(|e| AuthError::ReauthRequired {
            secret_id: secret_id.to_owned(),
            reason: format!("the login cannot be made from the stored credential: {e}"),
        })?;
    let asked_at = Utc::now();
    let (call, answer) = crate::calls::send(described.name(), req).await;
    let answer = answer.map_err(|e| transient(e.without_url().to_string()))?;
    let r = Response::from_parts(answer.status.as_u16(), &answer.headers, answer.body);
    let verdict = super::triage::triage(&described.description, &r, Utc::now());
    call.finish(verdict.kind.as_str());
    match verdict.kind {
        Kind::Ok => {}
        // Refused for where the call came from, not for the credential: nothing to reconnect.
        _ if verdict.refusal == Refusal::IpAllowList => {
            return Err(AuthError::IpRefused {
                secret_id: secret_id.to_owned(),
                reason: verdict.reason,
            })
        }
        // A refused login (a changed password, a locked account) needs a human; asking again
        // would only lock the account.
        Kind::Auth | Kind::ReauthRequired | Kind::Permanent => {
            return Err(AuthError::ReauthRequired {
                secret_id: secret_id.to_owned(),
                reason: format!("login refused: {}", verdict.reason),
            })
        }
        _ => return Err(transient(format!("login failed: {}", verdict.reason))),
    }
    // The answer is never echoed: it holds the token.
    let body = r
        .json()
        .ok_or_else(|| transient("the login answer is not JSON".into()))?;
    let session = body
        .pointer(token)
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| transient(format!("the login answer has no token at {token}")))?;
    let cap = max_session_age
        .as_deref()
        .and_then(|a| crate::settings::parse_interval(a).ok())
        .map(|d| d.as_secs());
    let said = expires_in
        .as_deref()
        .and_then(|p| body.pointer(p))
        .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()));
    // The shorter of what the answer says and the documented maximum; 1 h if neither says.
    let life = match (said, cap) {
        (Some(s), Some(c)) => s.min(c),
        (Some(x), None) | (None, Some(x)) => x,
        (None, None) => 3_600,
    };
    next["access_token"] = Value::from(session);
    next["issued_at"] = Value::from(crate::dates::format(&asked_at));
    next["expires_at"] = Value::from(crate::dates::format(
        &(asked_at + chrono::Duration::seconds(life as i64)),
    ));
    Ok(next)
}
