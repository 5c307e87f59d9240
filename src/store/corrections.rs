//! Corrections of published updates: the update's row never changes; each correction is a row
//! of its own, read back with the update it corrects.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{from_ms, ms, Conn, Result};

/// A correction as the pages, feeds and API show it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Correction {
    pub id: i64,
    #[serde(skip)]
    pub update_id: i64,
    /// The update's words as corrected.
    pub message: String,
    /// Why it was corrected.
    pub reason: String,
    /// Whether the meaning changed (not just a slip of the pen): networks that can edit a post
    /// also get a reply then, so nobody misses it.
    pub meaning_changed: bool,
    pub author: String,
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
pub(super) struct Row {
    id: i64,
    update_id: i64,
    message: String,
    reason: String,
    meaning_changed: i64,
    author: String,
    created_at: i64,
}

impl From<Row> for Correction {
    fn from(r: Row) -> Self {
        Correction {
            id: r.id,
            update_id: r.update_id,
            message: r.message,
            reason: r.reason,
            meaning_changed: r.meaning_changed == 1,
            author: r.author,
            created_at: from_ms(r.created_at),
        }
    }
}

pub(super) const COLUMNS: &str =
    "id, update_id, message, reason, meaning_changed, author, created_at";

pub struct NewCorrection<'a> {
    pub update_id: i64,
    pub incident_id: i64,
    pub message: &'a str,
    pub reason: &'a str,
    pub meaning_changed: bool,
    pub author: &'a str,
    pub now: DateTime<Utc>,
}

pub async fn insert(conn: &mut Conn, c: &NewCorrection<'_>) -> Result<i64> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO corrections (update_id, incident_id, message, reason, meaning_changed, \
         author, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(c.update_id)
    .bind(c.incident_id)
    .bind(c.message)
    .bind(c.reason)
    .bind(i64::from(c.meaning_changed))
    .bind(c.author)
    .bind(ms(c.now))
    .fetch_one(&mut *conn)
    .await?;
    super::changes::bump(conn, c.incident_id).await?;
    Ok(id)
}

/// An incident's corrections by the update they correct, oldest first.
pub async fn for_incident(
    conn: &mut Conn,
    incident_id: i64,
) -> Result<BTreeMap<i64, Vec<Correction>>> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM corrections WHERE incident_id = $1 ORDER BY id"
    ))
    .bind(incident_id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(group(rows))
}

/// The corrections of the `limit` newest updates, by update.
pub async fn for_newest_updates(
    conn: &mut Conn,
    limit: i64,
) -> Result<BTreeMap<i64, Vec<Correction>>> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM corrections WHERE update_id IN \
         (SELECT id FROM updates ORDER BY id DESC LIMIT $1) ORDER BY id"
    ))
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    Ok(group(rows))
}

pub(super) fn group(rows: Vec<Row>) -> BTreeMap<i64, Vec<Correction>> {
    let mut out: BTreeMap<i64, Vec<Correction>> = BTreeMap::new();
    for r in rows {
        out.entry(r.update_id).or_default().push(r.into());
    }
    out
}
