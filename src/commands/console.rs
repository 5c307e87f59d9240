//! The console's own audited events: signing in (which clears the failed attempts counted against
//! the account and the client's address), a failed sign-in (counted towards the lock) and
//! signing out. The password check itself happens before, in the handler; these only record.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{Actor, CommandError};
use crate::store::{audit, operators, Conn};

/// A sign-in succeeded: the failures counted against `keys` are forgotten.
#[tracing::instrument(skip_all, fields(actor = %crate::telemetry::actor(actor)))]
pub async fn sign_in(
    conn: &mut Conn,
    actor: &Actor,
    keys: &[String],
    now: DateTime<Utc>,
) -> Result<(), CommandError> {
    for k in keys {
        operators::clear_failures(conn, k).await?;
    }
    audit::record(
        conn,
        &actor.to_string(),
        "console.sign_in",
        None,
        &json!({}),
        now,
    )
    .await?;
    Ok(())
}

/// A sign-in failed: one more failure against each of `keys`. Returns until when signing in is
/// now locked, if a key reached the limit.
pub async fn sign_in_failed(
    conn: &mut Conn,
    email: &str,
    keys: &[String],
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, CommandError> {
    let mut until = None;
    for k in keys {
        until = until.max(operators::record_failure(conn, k, now).await?);
    }
    audit::record(
        conn,
        "anonymous",
        "console.sign_in_failed",
        None,
        &json!({ "email": crate::channels::truncate(email, 200), "locked_until": until }),
        now,
    )
    .await?;
    Ok(until)
}

/// An operator signed out.
#[tracing::instrument(skip_all, fields(actor = %crate::telemetry::actor(actor)))]
pub async fn sign_out(
    conn: &mut Conn,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(), CommandError> {
    audit::record(
        conn,
        &actor.to_string(),
        "console.sign_out",
        None,
        &json!({}),
        now,
    )
    .await?;
    Ok(())
}
