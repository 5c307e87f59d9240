//! API tokens: created and revoked from the command line, each change audited (never the token
//! itself: only its name).

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{Actor, CommandError};
use crate::domain::Invalid;
use crate::store::tokens::Scope;
use crate::store::{audit, tokens, Conn};

/// The longest token name, in bytes.
pub const MAX_NAME: usize = 100;

/// Creates a token named `name` (trimmed) that may do what `scopes` name, and returns its one and only plain-text copy. A name
/// already in use fails with the store's unique violation on `api_tokens` (see
/// [`crate::store::StoreError::is_unique_violation`]).
pub async fn create(
    conn: &mut Conn,
    actor: &Actor,
    name: &str,
    scopes: &[Scope],
    now: DateTime<Utc>,
) -> Result<String, CommandError> {
    let name = name.trim();
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(Invalid::new("name", format!("must be 1-{MAX_NAME} characters")).into());
    }
    if scopes.is_empty() {
        return Err(Invalid::new("scope", "name at least one scope").into());
    }
    let token = tokens::create(conn, name, scopes, &actor.to_string(), now).await?;
    audit::record(
        conn,
        &actor.to_string(),
        "token.create",
        None,
        &json!({ "name": name, "scopes": scopes }),
        now,
    )
    .await?;
    Ok(token)
}

/// Revokes the active token named `name`. Returns false (and audits nothing) if there is none.
pub async fn revoke(
    conn: &mut Conn,
    actor: &Actor,
    name: &str,
    now: DateTime<Utc>,
) -> Result<bool, CommandError> {
    if !tokens::revoke(conn, name, now).await? {
        return Ok(false);
    }
    audit::record(
        conn,
        &actor.to_string(),
        "token.revoke",
        None,
        &json!({ "name": name }),
        now,
    )
    .await?;
    Ok(true)
}
