//! Postmortems and their action items.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use super::{from_ms, ms, Conn, Result, StoreError};

/// A postmortem as stored (Markdown; rendered when shown).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Postmortem {
    pub incident_id: i64,
    pub body: String,
    pub author: String,
    pub updated_at: DateTime<Utc>,
    pub published_at: Option<DateTime<Utc>>,
    pub actions: Vec<Action>,
}

/// One action item.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Action {
    pub id: i64,
    pub text: String,
    pub owner: String,
    pub due_on: NaiveDate,
    pub done_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct ActionRow {
    id: i64,
    text: String,
    owner: String,
    due_on: String,
    done_at: Option<i64>,
}

/// An incident's postmortem, draft or published, with its action items.
pub async fn get(conn: &mut Conn, incident_id: i64) -> Result<Option<Postmortem>> {
    let row: Option<(String, String, i64, Option<i64>)> = sqlx::query_as(
        "SELECT body, author, updated_at, published_at FROM postmortems WHERE incident_id = $1",
    )
    .bind(incident_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((body, author, updated_at, published_at)) = row else {
        return Ok(None);
    };
    let rows: Vec<ActionRow> = sqlx::query_as(
        "SELECT id, text, owner, due_on, done_at FROM postmortem_actions \
         WHERE incident_id = $1 ORDER BY due_on, id",
    )
    .bind(incident_id)
    .fetch_all(&mut *conn)
    .await?;
    let actions = rows
        .into_iter()
        .map(|r| {
            Ok(Action {
                due_on: NaiveDate::parse_from_str(&r.due_on, "%Y-%m-%d")
                    .map_err(|e| StoreError::Corrupt(format!("action {} due_on: {e}", r.id)))?,
                id: r.id,
                text: r.text,
                owner: r.owner,
                done_at: r.done_at.map(from_ms),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(Postmortem {
        incident_id,
        body,
        author,
        updated_at: from_ms(updated_at),
        published_at: published_at.map(from_ms),
        actions,
    }))
}

/// Writes the draft (or the published postmortem's new words).
pub async fn save(
    conn: &mut Conn,
    incident_id: i64,
    body: &str,
    author: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO postmortems (incident_id, body, author, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (incident_id) DO UPDATE SET body = $2, author = $3, updated_at = $4",
    )
    .bind(incident_id)
    .bind(body)
    .bind(author)
    .bind(ms(now))
    .execute(&mut *conn)
    .await?;
    super::changes::bump(conn, incident_id).await?;
    Ok(())
}

/// Marks it published; false when it already was (or there is none).
pub async fn publish(conn: &mut Conn, incident_id: i64, now: DateTime<Utc>) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE postmortems SET published_at = $2 WHERE incident_id = $1 AND published_at IS NULL",
    )
    .bind(incident_id)
    .bind(ms(now))
    .execute(&mut *conn)
    .await?;
    super::changes::bump(conn, incident_id).await?;
    Ok(r.rows_affected() == 1)
}

pub async fn add_action(
    conn: &mut Conn,
    incident_id: i64,
    (text, owner, due_on): (&str, &str, NaiveDate),
    now: DateTime<Utc>,
) -> Result<i64> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO postmortem_actions (incident_id, text, owner, due_on, created_at) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(incident_id)
    .bind(text)
    .bind(owner)
    .bind(due_on.format("%Y-%m-%d").to_string())
    .bind(ms(now))
    .fetch_one(&mut *conn)
    .await?;
    super::changes::bump(conn, incident_id).await?;
    Ok(id)
}

/// Marks an action done; false when it is not this incident's or was done already.
pub async fn complete_action(
    conn: &mut Conn,
    incident_id: i64,
    id: i64,
    now: DateTime<Utc>,
) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE postmortem_actions SET done_at = $3 WHERE id = $1 AND incident_id = $2 \
         AND done_at IS NULL",
    )
    .bind(id)
    .bind(incident_id)
    .bind(ms(now))
    .execute(&mut *conn)
    .await?;
    super::changes::bump(conn, incident_id).await?;
    Ok(r.rows_affected() == 1)
}
