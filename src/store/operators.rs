//! Console operators (argon2id password hashes), their roles and their lifecycle: added,
//! disabled, enabled, given a new role or password, removed. Sign-in throttling lives in
//! [`super::throttle`].

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
use argon2::{Argon2, PasswordVerifier};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{from_ms, ms, opt_from_ms, Conn, Result, StoreError};

/// An operator's role. A `responder` runs incidents and maintenance; an `admin` also manages
/// operators, API tokens and subscribers. Enforced on every console route.
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
    /// Raised when the password is reset or the operator disabled; sessions signed in under an
    /// older epoch are over.
    pub session_epoch: i64,
}

impl Operator {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
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

type Row = (i64, String, String, i64, Option<i64>, i64);
const COLUMNS: &str = "id, email, role, created_at, disabled_at, session_epoch";

fn from_row((id, email, role, created_at, disabled_at, session_epoch): Row) -> Result<Operator> {
    Ok(Operator {
        id,
        email,
        role: role.parse().map_err(StoreError::Corrupt)?,
        created_at: from_ms(created_at),
        disabled_at: opt_from_ms(disabled_at),
        session_epoch,
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
            "UPDATE operators SET role = $2, password_hash = $3, disabled_at = NULL, \
             session_epoch = session_epoch + 1 WHERE id = $1",
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
    let row: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM operators WHERE id = $1 AND disabled_at IS NULL"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(from_row).transpose()
}

/// An enabled operator and its password hash, by email.
pub async fn credentials(conn: &mut Conn, email: &str) -> Result<Option<(Operator, String)>> {
    type WithHash = (i64, String, String, i64, Option<i64>, i64, String);
    let row: Option<WithHash> = sqlx::query_as(&format!(
        "SELECT {COLUMNS}, password_hash FROM operators WHERE email = $1 AND disabled_at IS NULL"
    ))
    .bind(email)
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        None => Ok(None),
        Some((id, email, role, c, d, e, hash)) => {
            Ok(Some((from_row((id, email, role, c, d, e))?, hash)))
        }
    }
}

pub async fn list(conn: &mut Conn) -> Result<Vec<Operator>> {
    let rows: Vec<Row> = sqlx::query_as(&format!("SELECT {COLUMNS} FROM operators ORDER BY email"))
        .fetch_all(&mut *conn)
        .await?;
    rows.into_iter().map(from_row).collect()
}

/// The operator with this address, enabled or not.
pub async fn by_email(conn: &mut Conn, email: &str) -> Result<Option<Operator>> {
    let row: Option<Row> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM operators WHERE email = $1"))
            .bind(email)
            .fetch_optional(&mut *conn)
            .await?;
    row.map(from_row).transpose()
}

/// How many enabled admins there are (the last one may not be removed, disabled or demoted).
pub async fn enabled_admins(conn: &mut Conn) -> Result<i64> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM operators WHERE role = 'admin' AND disabled_at IS NULL",
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(n)
}

/// Disables (ending every session at once) or enables the operator. Returns false if there is
/// no operator with this id.
pub async fn set_disabled(
    conn: &mut Conn,
    id: i64,
    disabled: bool,
    now: DateTime<Utc>,
) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE operators SET disabled_at = $2, session_epoch = session_epoch + 1 WHERE id = $1",
    )
    .bind(id)
    .bind(disabled.then(|| ms(now)))
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn set_role(conn: &mut Conn, id: i64, role: Role) -> Result<bool> {
    let r = sqlx::query("UPDATE operators SET role = $2 WHERE id = $1")
        .bind(id)
        .bind(role.as_str())
        .execute(&mut *conn)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// Replaces the password hash and ends every session the operator has.
pub async fn set_password(conn: &mut Conn, id: i64, password_hash: &str) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE operators SET password_hash = $2, session_epoch = session_epoch + 1 WHERE id = $1",
    )
    .bind(id)
    .bind(password_hash)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Removes the operator for good (the audit log keeps their address in its entries).
pub async fn remove(conn: &mut Conn, id: i64) -> Result<bool> {
    let r = sqlx::query("DELETE FROM operators WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(r.rows_affected() == 1)
}
