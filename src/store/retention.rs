//! Deleting finished history past its retention, a bounded batch per statement.

use chrono::{DateTime, Utc};

use super::{ms, Db, Result};

/// Cut-off times: rows older than these go.
pub struct Cutoffs {
    pub deliveries: DateTime<Utc>,
    pub audit: DateTime<Utc>,
    pub sessions: DateTime<Utc>,
}

/// What one sweep deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub deliveries: u64,
    pub email_sends: u64,
    pub audit: u64,
    pub sessions: u64,
    pub login_throttle: u64,
    pub public_changes: u64,
    /// Inbox conversations (with their posts and answers) of incidents resolved before the
    /// deliveries' cut-off.
    pub inbox: u64,
}

/// Rows of `public_changes` kept: an instance further behind than this reloads everything.
pub const PUBLIC_CHANGES_KEPT: i64 = 10_000;

// Inbox conversations of incidents resolved before the deliveries' cut-off.
const OLD_CONVERSATIONS: &str = "SELECT c.id FROM inbox_conversations c JOIN incidents i \
     ON i.id = c.incident_id WHERE i.resolved_at IS NOT NULL AND i.resolved_at < $1 \
     ORDER BY c.id LIMIT $2";

// Finished deliveries of resolved incidents (an open incident's first post is its thread root),
// and finished deliveries of no incident (confirmation mails).
const OLD_DELIVERIES: &str =
    "SELECT d.id FROM deliveries d LEFT JOIN incidents i ON i.id = d.incident_id \
     WHERE d.state IN ('delivered', 'dead') AND d.created_at < $1 \
     AND (d.incident_id IS NULL OR i.resolved_at IS NOT NULL) \
     ORDER BY d.id LIMIT $2";

/// Deletes everything past its cut-off, `batch` rows per statement, each batch in its own short
/// write (so other writers take turns in between), until a batch comes back short.
pub async fn sweep(db: &Db, c: &Cutoffs, batch: i64) -> Result<Swept> {
    let mut swept = Swept::default();
    loop {
        let mut tx = db.begin_write().await?;
        let sends = sqlx::query(&format!(
            "DELETE FROM email_sends WHERE delivery_id IN ({OLD_DELIVERIES})"
        ))
        .bind(ms(c.deliveries))
        .bind(batch)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let n = sqlx::query(&format!(
            "DELETE FROM deliveries WHERE id IN ({OLD_DELIVERIES})"
        ))
        .bind(ms(c.deliveries))
        .bind(batch)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        swept.email_sends += sends;
        swept.deliveries += n;
        if n < batch as u64 {
            break;
        }
    }
    loop {
        let mut tx = db.begin_write().await?;
        for table in ["inbox_answers", "inbox_items"] {
            sqlx::query(&format!(
                "DELETE FROM {table} WHERE conversation_id IN ({OLD_CONVERSATIONS})"
            ))
            .bind(ms(c.deliveries))
            .bind(batch)
            .execute(&mut *tx)
            .await?;
        }
        let n = sqlx::query(&format!(
            "DELETE FROM inbox_conversations WHERE id IN ({OLD_CONVERSATIONS})"
        ))
        .bind(ms(c.deliveries))
        .bind(batch)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query(
            "DELETE FROM inbox_incidents WHERE incident_id IN (SELECT id FROM incidents \
             WHERE resolved_at IS NOT NULL AND resolved_at < $1) AND incident_id NOT IN \
             (SELECT incident_id FROM inbox_conversations)",
        )
        .bind(ms(c.deliveries))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        swept.inbox += n;
        if n < batch as u64 {
            break;
        }
    }
    swept.audit = batched(
        db,
        "DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE created_at < $1 \
         ORDER BY id LIMIT $2)",
        ms(c.audit),
        batch,
    )
    .await?;
    swept.sessions = batched(
        db,
        "DELETE FROM console_sessions WHERE id IN (SELECT id FROM console_sessions \
         WHERE expires_at < $1 LIMIT $2)",
        ms(c.sessions),
        batch,
    )
    .await?;
    swept.login_throttle = batched(
        db,
        "DELETE FROM login_throttle WHERE throttle_key IN (SELECT throttle_key FROM login_throttle \
         WHERE last_at < $1 AND next_at < $1 LIMIT $2)",
        ms(c.sessions),
        batch,
    )
    .await?;
    let version = {
        let mut conn = db.pool().acquire().await?;
        super::changes::version(&mut conn).await?
    };
    swept.public_changes = batched(
        db,
        "DELETE FROM public_changes WHERE version IN (SELECT version FROM public_changes \
         WHERE version <= $1 ORDER BY version LIMIT $2)",
        version - PUBLIC_CHANGES_KEPT,
        batch,
    )
    .await?;
    Ok(swept)
}

async fn batched(db: &Db, sql: &str, cutoff: i64, batch: i64) -> Result<u64> {
    let mut total = 0;
    loop {
        let mut conn = db.write_conn().await?;
        let n = sqlx::query(sql)
            .bind(cutoff)
            .bind(batch)
            .execute(&mut *conn)
            .await?
            .rows_affected();
        drop(conn);
        total += n;
        if n < batch as u64 {
            return Ok(total);
        }
    }
}
