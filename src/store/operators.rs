//! Console operators (argon2id password hashes) and the failed sign-in counters that slow down
//! password guessing. The counters live in the database, so a lock-out holds across every
//! instance behind a load balancer, and time comes from the caller's clock.

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
use argon2::{Argon2, PasswordVerifier};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{from_ms, ms, opt_from_ms, Conn, Result, StoreError};

/// An operator's role, shown in the console and the audit log. Both roles may do everything the
/// console offers today; `admin` marks who manages operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Responder,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Responder => "responder",
            Role::Admin => "admin",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "responder" => Ok(Role::Responder),
            "admin" => Ok(Role::Admin),
            other => Err(format!(
                "unknown role `{other}`; expected responder or admin"
            )),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Operator {
    pub id: i64,
    pub email: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    pub disabled_at: Option<DateTime<Utc>>,
}

/// Hashes a password with argon2id (the crate's default parameters, a random salt), in PHC form.
pub fn hash_password(password: &str) -> std::result::Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash the password: {e}"))
}

/// True when `password` matches the stored PHC hash.
pub fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash of a password nobody has, verified when the email is unknown so that a sign-in with
/// an unknown email costs as long as one with a wrong password.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("candor-decoy-password").unwrap_or_default())
}

type Row = (i64, String, String, i64, Option<i64>);

fn from_row((id, email, role, created_at, disabled_at): Row) -> Result<Operator> {
    Ok(Operator {
        id,
        email,
        role: role.parse().map_err(StoreError::Corrupt)?,
        created_at: from_ms(created_at),
        disabled_at: opt_from_ms(disabled_at),
    })
}

/// Adds an operator, or replaces the role and password of the one with this email. Returns
/// its id and whether it was new.
pub async fn upsert(
    conn: &mut Conn,
    email: &str,
    role: Role,
    password_hash: &str,
    now: DateTime<Utc>,
) -> Result<(i64, bool)> {
    let existing: Option<(i64,)> = sqlx::query_as("SELECT id FROM operators WHERE email = $1")
        .bind(email)
        .fetch_optional(&mut *conn)
        .await?;
    if let Some((id,)) = existing {
        sqlx::query(
            "UPDATE operators SET role = $2, password_hash = $3, disabled_at = NULL WHERE id = $1",
        )
        .bind(id)
        .bind(role.as_str())
        .bind(password_hash)
        .execute(&mut *conn)
        .await?;
        return Ok((id, false));
    }
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO operators (email, role, password_hash, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(email)
    .bind(role.as_str())
    .bind(password_hash)
    .bind(ms(now))
    .fetch_one(&mut *conn)
    .await?;
    Ok((id, true))
}

/// An enabled operator by id (what a session points at).
pub async fn get(conn: &mut Conn, id: i64) -> Result<Option<Operator>> {
    let row: Option<Row> = sqlx::query_as(
        "SELECT id, email, role, created_at, disabled_at FROM operators WHERE id = $1 AND disabled_at IS NULL",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(from_row).transpose()
}

/// An enabled operator and its password hash, by email.
pub async fn credentials(conn: &mut Conn, email: &str) -> Result<Option<(Operator, String)>> {
    let row: Option<(i64, String, String, i64, Option<i64>, String)> = sqlx::query_as(
        "SELECT id, email, role, created_at, disabled_at, password_hash FROM operators \
         WHERE email = $1 AND disabled_at IS NULL",
    )
    .bind(email)
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        None => Ok(None),
        Some((id, email, role, c, d, hash)) => Ok(Some((from_row((id, email, role, c, d))?, hash))),
    }
}

pub async fn list(conn: &mut Conn) -> Result<Vec<Operator>> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, email, role, created_at, disabled_at FROM operators ORDER BY email",
    )
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter().map(from_row).collect()
}

/// Failed sign-ins allowed per key within [`FAILURE_WINDOW`] before it is locked.
pub const MAX_FAILURES: i64 = 5;
/// The window failures are counted in, and how long a lock lasts.
pub const FAILURE_WINDOW: chrono::Duration = chrono::Duration::minutes(15);

/// When the key is locked, until when.
pub async fn locked_until(
    conn: &mut Conn,
    key: &str,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>> {
    let row: Option<(Option<i64>,)> =
        sqlx::query_as("SELECT locked_until FROM login_failures WHERE throttle_key = $1")
            .bind(key)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(row
        .and_then(|(l,)| l)
        .map(from_ms)
        .filter(|until| *until > now))
}

/// Counts a failed sign-in against `key`; locks it when it reaches [`MAX_FAILURES`] within the
/// window. Returns the lock's end if it is now locked.
pub async fn record_failure(
    conn: &mut Conn,
    key: &str,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>> {
    let row: Option<(i64, i64)> =
        sqlx::query_as("SELECT failures, first_at FROM login_failures WHERE throttle_key = $1")
            .bind(key)
            .fetch_optional(&mut *conn)
            .await?;
    let (failures, first_at) = match row {
        Some((n, first)) if from_ms(first) + FAILURE_WINDOW > now => (n + 1, first),
        _ => (1, ms(now)),
    };
    let locked = (failures >= MAX_FAILURES).then(|| now + FAILURE_WINDOW);
    sqlx::query(
        "INSERT INTO login_failures (throttle_key, failures, first_at, locked_until) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (throttle_key) DO UPDATE SET failures = $2, first_at = $3, locked_until = $4",
    )
    .bind(key)
    .bind(if locked.is_some() { 0 } else { failures })
    .bind(if locked.is_some() { ms(now) } else { first_at })
    .bind(locked.map(ms))
    .execute(&mut *conn)
    .await?;
    Ok(locked)
}

/// Forgets the failures of `key` (after a successful sign-in).
pub async fn clear_failures(conn: &mut Conn, key: &str) -> Result<()> {
    sqlx::query("DELETE FROM login_failures WHERE throttle_key = $1")
        .bind(key)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
