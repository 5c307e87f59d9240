//! The console's own events: reserving a sign-in attempt (before the password is checked, see
//! [`crate::store::throttle`]), signing in (which forgets the attempts counted against the
//! account), a failed sign-in and signing out, each audited.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{Actor, CommandError};
use crate::store::throttle::{self, Key};
use crate::store::{audit, Conn};

/// Reserves one attempt on every key, in order. `Some(t)` when a key allows no attempt before
/// `t` (the password must then not be checked at all).
pub async fn reserve_sign_in(
    conn: &mut Conn,
    keys: &[Key],
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, CommandError> {
    for k in keys {
        if let Some(until) = throttle::reserve(conn, k, now).await? {
            return Ok(Some(until));
        }
    }
    Ok(None)
}

/// A sign-in succeeded: the attempts counted against the account (from everywhere) are
/// forgotten; the client's own key keeps counting, so one good password does not buy a client
/// fresh guesses at other accounts.
#[tracing::instrument(skip_all, fields(actor = %crate::telemetry::actor(actor)))]
pub async fn sign_in(
    conn: &mut Conn,
    actor: &Actor,
    keys: &[Key],
    now: DateTime<Utc>,
) -> Result<(), CommandError> {
    for k in keys.iter().filter(|k| k.is_account()) {
        throttle::clear(conn, &k.name).await?;
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

/// A sign-in failed (its attempt was already counted when it was reserved).
pub async fn sign_in_failed(
    conn: &mut Conn,
    email: &str,
    client: Option<std::net::IpAddr>,
    now: DateTime<Utc>,
) -> Result<(), CommandError> {
    audit::record(
        conn,
        "anonymous",
        "console.sign_in_failed",
        None,
        &json!({
            "email": crate::channels::truncate(email, 200),
            "client": client.map(|c| c.to_string()),
        }),
        now,
    )
    .await?;
    Ok(())
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
