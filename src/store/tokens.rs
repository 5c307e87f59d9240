//! API bearer tokens. Only a SHA-256 hash is stored: tokens are 256 random bits, so a fast hash is
//! as strong as a slow one here, and lookups stay cheap on every request.

use base64::Engine;
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{from_ms, ms, opt_from_ms, Conn, Result};

pub const PREFIX: &str = "candor_";

/// The identity a valid token stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenOwner {
    pub id: i64,
    pub name: String,
}

pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!(
        "{PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// Creates a token named `name` and returns its one and only plain-text copy.
pub async fn create(conn: &mut Conn, name: &str, now: DateTime<Utc>) -> Result<String> {
    let token = generate();
    sqlx::query("INSERT INTO api_tokens (name, token_hash, created_at) VALUES ($1, $2, $3)")
        .bind(name)
        .bind(hash(&token))
        .bind(ms(now))
        .execute(&mut *conn)
        .await?;
    Ok(token)
}

/// The owner of an unrevoked token, if `token` is one.
pub async fn authenticate(conn: &mut Conn, token: &str) -> Result<Option<TokenOwner>> {
    let row: Option<(i64, String)> = sqlx::query_as(
        "SELECT id, name FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL",
    )
    .bind(hash(token))
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|(id, name)| TokenOwner { id, name }))
}

pub async fn touch(conn: &mut Conn, id: i64, now: DateTime<Utc>) -> Result<()> {
    sqlx::query("UPDATE api_tokens SET last_used_at = $2 WHERE id = $1")
        .bind(id)
        .bind(ms(now))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Revokes the token named `name`. Returns false if there is none.
pub async fn revoke(conn: &mut Conn, name: &str, now: DateTime<Utc>) -> Result<bool> {
    let r =
        sqlx::query("UPDATE api_tokens SET revoked_at = $2 WHERE name = $1 AND revoked_at IS NULL")
            .bind(name)
            .bind(ms(now))
            .execute(&mut *conn)
            .await?;
    Ok(r.rows_affected() == 1)
}

#[derive(Debug, Clone, Serialize)]
pub struct TokenInfo {
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

pub async fn list(conn: &mut Conn) -> Result<Vec<TokenInfo>> {
    let rows: Vec<(String, i64, Option<i64>, Option<i64>)> = sqlx::query_as(
        "SELECT name, created_at, last_used_at, revoked_at FROM api_tokens ORDER BY name",
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(name, c, u, r)| TokenInfo {
            name,
            created_at: from_ms(c),
            last_used_at: opt_from_ms(u),
            revoked_at: opt_from_ms(r),
        })
        .collect())
}
