//! Saved responses for `Idempotency-Key`: a retry with the same key and body gets the first
//! response back, and nothing happens twice. Saved in the same transaction as the write itself.

use chrono::{DateTime, Utc};

use super::{ms, Conn, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    pub request_hash: String,
    pub status: u16,
    pub body: String,
}

pub async fn lookup(conn: &mut Conn, token_id: i64, key: &str) -> Result<Option<Saved>> {
    let row: Option<(String, i64, String)> = sqlx::query_as(
        "SELECT request_hash, response_status, response_body FROM idempotency_keys \
         WHERE token_id = $1 AND idem_key = $2",
    )
    .bind(token_id)
    .bind(key)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|(request_hash, status, body)| Saved {
        request_hash,
        status: u16::try_from(status).unwrap_or(200),
        body,
    }))
}

pub async fn save(
    conn: &mut Conn,
    token_id: i64,
    key: &str,
    saved: &Saved,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO idempotency_keys (token_id, idem_key, request_hash, response_status, response_body, \
         created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(token_id)
    .bind(key)
    .bind(&saved.request_hash)
    .bind(i64::from(saved.status))
    .bind(&saved.body)
    .bind(ms(now))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Forgets keys older than `before` (they are honoured for a day).
pub async fn purge(conn: &mut Conn, before: DateTime<Utc>) -> Result<u64> {
    let r = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
        .bind(ms(before))
        .execute(&mut *conn)
        .await?;
    Ok(r.rows_affected())
}
