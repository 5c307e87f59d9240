//! Console sessions, kept in Candor's own database through tower-sessions' [`SessionStore`]
//! trait. One SQL text serves both backends over the `Any` pool, so the console needs no
//! second, typed pool and works wherever the rest of Candor does. Only a SHA-256 of the
//! session id is stored (the id is 128 random bits): a copy of the table opens no sessions.
//!
//! Expiry is judged by Candor's clock, not the wall clock tower-sessions stamps records with:
//! each save moves the stored expiry to `now + idle`, and a load refuses an expired row.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};

use super::{from_ms, ms, Db};
use crate::clock::Clock;

#[derive(Clone)]
pub struct DbSessionStore {
    db: Db,
    clock: Arc<dyn Clock>,
    idle: chrono::Duration,
}

impl std::fmt::Debug for DbSessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DbSessionStore")
    }
}

impl DbSessionStore {
    /// A store whose sessions end after `idle` without a request.
    pub fn new(db: Db, clock: Arc<dyn Clock>, idle: chrono::Duration) -> Self {
        Self { db, clock, idle }
    }

    fn expiry_ms(&self) -> i64 {
        ms(self.clock.now() + self.idle)
    }

    /// Deletes expired sessions; returns how many.
    pub async fn delete_expired(&self) -> super::Result<u64> {
        let mut conn = self.db.write_conn().await?;
        let r = sqlx::query("DELETE FROM console_sessions WHERE expires_at <= $1")
            .bind(ms(self.clock.now()))
            .execute(&mut *conn)
            .await?;
        Ok(r.rows_affected())
    }
}

fn key(id: &Id) -> String {
    hex::encode(Sha256::digest(id.to_string().as_bytes()))
}

fn backend(e: impl std::fmt::Display) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

fn to_offset(t: DateTime<Utc>) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms(t)) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

#[async_trait]
impl SessionStore for DbSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let mut conn = self.db.write_conn().await.map_err(backend)?;
        let data = serde_json::to_string(&record.data)
            .map_err(|e| session_store::Error::Encode(e.to_string()))?;
        // A collision of 128 random bits is not expected; if one happens, draw again.
        for _ in 0..3 {
            let r = sqlx::query(
                "INSERT INTO console_sessions (id, data, expires_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
            )
            .bind(key(&record.id))
            .bind(&data)
            .bind(self.expiry_ms())
            .execute(&mut *conn)
            .await
            .map_err(backend)?;
            if r.rows_affected() == 1 {
                return Ok(());
            }
            record.id = Id::default();
        }
        Err(backend("could not find a free session id"))
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let mut conn = self.db.write_conn().await.map_err(backend)?;
        let data = serde_json::to_string(&record.data)
            .map_err(|e| session_store::Error::Encode(e.to_string()))?;
        sqlx::query(
            "INSERT INTO console_sessions (id, data, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET data = $2, expires_at = $3",
        )
        .bind(key(&record.id))
        .bind(&data)
        .bind(self.expiry_ms())
        .execute(&mut *conn)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let row: Option<(String, i64)> = sqlx::query_as(
            "SELECT data, expires_at FROM console_sessions WHERE id = $1 AND expires_at > $2",
        )
        .bind(key(id))
        .bind(ms(self.clock.now()))
        .fetch_optional(self.db.pool())
        .await
        .map_err(backend)?;
        let Some((data, expires_at)) = row else {
            return Ok(None);
        };
        let data: HashMap<String, serde_json::Value> =
            serde_json::from_str(&data).map_err(|e| session_store::Error::Decode(e.to_string()))?;
        Ok(Some(Record {
            id: *id,
            data,
            expiry_date: to_offset(from_ms(expires_at)),
        }))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        let mut conn = self.db.write_conn().await.map_err(backend)?;
        sqlx::query("DELETE FROM console_sessions WHERE id = $1")
            .bind(key(id))
            .execute(&mut *conn)
            .await
            .map_err(backend)?;
        Ok(())
    }
}
