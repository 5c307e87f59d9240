//! The inbox: where each listened channel has read up to, customers' posts grouped into
//! conversations (one per incident, channel and author), claims, and Candor's answers.

use chrono::{DateTime, Utc};

use super::{from_ms, ms, opt_from_ms, Conn, Result};

/// Where a channel has read its notifications up to, and when it may be asked again.
#[derive(Debug, Clone)]
pub struct Source {
    pub channel: String,
    pub cursor: Option<String>,
    pub next_poll_at: DateTime<Utc>,
    pub failures: i64,
    pub last_polled_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

type SourceRow = (
    String,
    Option<String>,
    i64,
    i64,
    Option<i64>,
    Option<String>,
);

fn source_of(r: SourceRow) -> Source {
    Source {
        channel: r.0,
        cursor: r.1,
        next_poll_at: from_ms(r.2),
        failures: r.3,
        last_polled_at: opt_from_ms(r.4),
        last_error: r.5,
    }
}

pub async fn source(conn: &mut Conn, channel: &str) -> Result<Option<Source>> {
    let row: Option<SourceRow> = sqlx::query_as(
        "SELECT channel, cursor, next_poll_at, failures, last_polled_at, last_error \
         FROM inbox_sources WHERE channel = $1",
    )
    .bind(channel)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(source_of))
}

pub async fn sources(conn: &mut Conn) -> Result<Vec<Source>> {
    let rows: Vec<SourceRow> = sqlx::query_as(
        "SELECT channel, cursor, next_poll_at, failures, last_polled_at, last_error \
         FROM inbox_sources ORDER BY channel",
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(source_of).collect())
}

/// Stores the cursor after a page whose posts were kept in the same transaction.
pub async fn save_cursor(
    conn: &mut Conn,
    channel: &str,
    cursor: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO inbox_sources (channel, cursor, next_poll_at, failures) VALUES ($1, $2, $3, 0) \
         ON CONFLICT (channel) DO UPDATE SET cursor = excluded.cursor",
    )
    .bind(channel)
    .bind(cursor)
    .bind(ms(now))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Records how a poll went: when the next may be, failures in a row and the last error.
pub async fn save_poll(
    conn: &mut Conn,
    channel: &str,
    next_poll_at: DateTime<Utc>,
    failures: i64,
    error: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO inbox_sources (channel, cursor, next_poll_at, failures, last_polled_at, last_error) \
         VALUES ($1, NULL, $2, $3, $4, $5) ON CONFLICT (channel) DO UPDATE SET \
         next_poll_at = excluded.next_poll_at, failures = excluded.failures, \
         last_polled_at = excluded.last_polled_at, last_error = excluded.last_error",
    )
    .bind(channel)
    .bind(ms(next_poll_at))
    .bind(failures)
    .bind(ms(now))
    .bind(error)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Remote ids of Candor's own posts on `channel` (updates and replies) with their incident.
pub async fn known_posts(conn: &mut Conn, channel: &str) -> Result<Vec<(String, i64)>> {
    Ok(sqlx::query_as(
        "SELECT remote_id, incident_id FROM deliveries WHERE channel = $1 \
         AND audience IN ('public', 'reply') AND state = 'delivered' AND remote_id IS NOT NULL \
         AND incident_id IS NOT NULL",
    )
    .bind(channel)
    .fetch_all(&mut *conn)
    .await?)
}

/// Open incidents (not maintenance windows) with when they started.
pub async fn open_incidents(conn: &mut Conn) -> Result<Vec<(i64, DateTime<Utc>)>> {
    let rows: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT id, started_at FROM incidents WHERE resolved_at IS NULL AND kind = 'incident'",
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(|(id, t)| (id, from_ms(t))).collect())
}

/// A post to keep.
pub struct NewItem<'a> {
    pub incident_id: i64,
    pub channel: &'a str,
    pub author_id: &'a str,
    pub handle: &'a str,
    pub name: &'a str,
    pub remote_id: &'a str,
    pub root_ref: Option<&'a str>,
    pub body: &'a str,
    pub url: Option<&'a str>,
    pub posted_at: DateTime<Utc>,
}

/// What keeping a post did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    New,
    /// Kept before (read again after a restart, or on another page).
    Seen,
    /// The incident's inbox is full: counted, not kept.
    Dropped,
}

/// Keeps one post in its author's conversation, once; refuses it (counting) past `max` posts
/// per incident.
pub async fn keep(conn: &mut Conn, i: &NewItem<'_>, max: i64, now: DateTime<Utc>) -> Result<Kept> {
    let seen: Option<(i64,)> =
        sqlx::query_as("SELECT id FROM inbox_items WHERE channel = $1 AND remote_id = $2")
            .bind(i.channel)
            .bind(i.remote_id)
            .fetch_optional(&mut *conn)
            .await?;
    if seen.is_some() {
        return Ok(Kept::Seen);
    }
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM inbox_items WHERE incident_id = $1")
        .bind(i.incident_id)
        .fetch_one(&mut *conn)
        .await?;
    if n >= max {
        sqlx::query(
            "INSERT INTO inbox_incidents (incident_id, tell_fixed, dropped) VALUES ($1, 1, 1) \
             ON CONFLICT (incident_id) DO UPDATE SET dropped = inbox_incidents.dropped + 1",
        )
        .bind(i.incident_id)
        .execute(&mut *conn)
        .await?;
        return Ok(Kept::Dropped);
    }
    let (conversation,): (i64,) = sqlx::query_as(
        "INSERT INTO inbox_conversations (incident_id, channel, author_id, author_handle, author_name, \
         first_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (incident_id, channel, author_id) \
         DO UPDATE SET author_handle = excluded.author_handle, author_name = excluded.author_name \
         RETURNING id",
    )
    .bind(i.incident_id)
    .bind(i.channel)
    .bind(i.author_id)
    .bind(i.handle)
    .bind(i.name)
    .bind(ms(i.posted_at))
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO inbox_items (conversation_id, incident_id, channel, remote_id, root_ref, body, url, \
         posted_at, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(conversation)
    .bind(i.incident_id)
    .bind(i.channel)
    .bind(i.remote_id)
    .bind(i.root_ref)
    .bind(i.body)
    .bind(i.url)
    .bind(ms(i.posted_at))
    .bind(ms(now))
    .execute(&mut *conn)
    .await?;
    Ok(Kept::New)
}

/// One conversation's row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Conversation {
    pub id: i64,
    pub incident_id: i64,
    pub channel: String,
    pub author_id: String,
    pub author_handle: String,
    pub author_name: String,
    pub first_at: DateTime<Utc>,
    pub claimed_by: Option<String>,
    pub claimed_at: Option<DateTime<Utc>>,
    pub answered_at: Option<DateTime<Utc>>,
    pub waiting_told_at: Option<DateTime<Utc>>,
    pub fixed_told_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct ConversationRow {
    id: i64,
    incident_id: i64,
    channel: String,
    author_id: String,
    author_handle: String,
    author_name: String,
    first_at: i64,
    claimed_by: Option<String>,
    claimed_at: Option<i64>,
    answered_at: Option<i64>,
    waiting_told_at: Option<i64>,
    fixed_told_at: Option<i64>,
}

impl From<ConversationRow> for Conversation {
    fn from(r: ConversationRow) -> Self {
        Conversation {
            id: r.id,
            incident_id: r.incident_id,
            channel: r.channel,
            author_id: r.author_id,
            author_handle: r.author_handle,
            author_name: r.author_name,
            first_at: from_ms(r.first_at),
            claimed_by: r.claimed_by,
            claimed_at: opt_from_ms(r.claimed_at),
            answered_at: opt_from_ms(r.answered_at),
            waiting_told_at: opt_from_ms(r.waiting_told_at),
            fixed_told_at: opt_from_ms(r.fixed_told_at),
        }
    }
}

const CONVERSATION: &str =
    "SELECT id, incident_id, channel, author_id, author_handle, author_name, \
     first_at, claimed_by, claimed_at, answered_at, waiting_told_at, fixed_told_at \
     FROM inbox_conversations";

pub async fn conversation(conn: &mut Conn, id: i64) -> Result<Option<Conversation>> {
    let row: Option<ConversationRow> = sqlx::query_as(&format!("{CONVERSATION} WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.map(Into::into))
}

/// An incident's conversations, the earliest first.
pub async fn conversations(conn: &mut Conn, incident_id: i64) -> Result<Vec<Conversation>> {
    let rows: Vec<ConversationRow> = sqlx::query_as(&format!(
        "{CONVERSATION} WHERE incident_id = $1 ORDER BY first_at, id"
    ))
    .bind(incident_id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// What claiming did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    Claimed,
    /// Someone holds it already (possibly the same person).
    HeldBy(String),
    Missing,
}

/// Claims a conversation for `who` if nobody holds it: one conditional `UPDATE`, so of two
/// claims at once exactly one wins.
pub async fn claim(conn: &mut Conn, id: i64, who: &str, now: DateTime<Utc>) -> Result<Claim> {
    let r = sqlx::query(
        "UPDATE inbox_conversations SET claimed_by = $2, claimed_at = $3 \
         WHERE id = $1 AND claimed_by IS NULL",
    )
    .bind(id)
    .bind(who)
    .bind(ms(now))
    .execute(&mut *conn)
    .await?;
    if r.rows_affected() == 1 {
        return Ok(Claim::Claimed);
    }
    let row: Option<(Option<String>,)> =
        sqlx::query_as("SELECT claimed_by FROM inbox_conversations WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(match row {
        Some((Some(holder),)) => Claim::HeldBy(holder),
        // Released between the two statements: not possible (claims are never released).
        Some((None,)) | None => Claim::Missing,
    })
}

/// One inbound post.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Item {
    pub id: i64,
    pub conversation_id: i64,
    pub remote_id: String,
    pub root_ref: Option<String>,
    pub body: String,
    pub url: Option<String>,
    pub posted_at: DateTime<Utc>,
}

type ItemRow = (
    i64,
    i64,
    String,
    Option<String>,
    String,
    Option<String>,
    i64,
);

fn item_of(r: ItemRow) -> Item {
    Item {
        id: r.0,
        conversation_id: r.1,
        remote_id: r.2,
        root_ref: r.3,
        body: r.4,
        url: r.5,
        posted_at: from_ms(r.6),
    }
}

/// An incident's posts, oldest first.
pub async fn items(conn: &mut Conn, incident_id: i64) -> Result<Vec<Item>> {
    let rows: Vec<ItemRow> = sqlx::query_as(
        "SELECT id, conversation_id, remote_id, root_ref, body, url, posted_at FROM inbox_items \
         WHERE incident_id = $1 ORDER BY posted_at, id",
    )
    .bind(incident_id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(item_of).collect())
}

/// A conversation's latest post (what an answer replies to unless another is named).
pub async fn latest_item(conn: &mut Conn, conversation_id: i64) -> Result<Option<Item>> {
    let row: Option<ItemRow> = sqlx::query_as(
        "SELECT id, conversation_id, remote_id, root_ref, body, url, posted_at FROM inbox_items \
         WHERE conversation_id = $1 ORDER BY posted_at DESC, id DESC LIMIT 1",
    )
    .bind(conversation_id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(item_of))
}

pub struct NewAnswer<'a> {
    pub conversation_id: i64,
    pub item_id: i64,
    pub delivery_id: i64,
    /// `answer` or `fixed`.
    pub kind: &'a str,
    pub body: &'a str,
    pub actor: &'a str,
    pub now: DateTime<Utc>,
}

/// Records an answer and marks the conversation answered (its first answer's time stays).
pub async fn add_answer(conn: &mut Conn, a: &NewAnswer<'_>) -> Result<()> {
    sqlx::query(
        "INSERT INTO inbox_answers (conversation_id, item_id, delivery_id, kind, body, actor, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(a.conversation_id)
    .bind(a.item_id)
    .bind(a.delivery_id)
    .bind(a.kind)
    .bind(a.body)
    .bind(a.actor)
    .bind(ms(a.now))
    .execute(&mut *conn)
    .await?;
    if a.kind == "answer" {
        sqlx::query(
            "UPDATE inbox_conversations SET answered_at = $2 WHERE id = $1 AND answered_at IS NULL",
        )
        .bind(a.conversation_id)
        .bind(ms(a.now))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// One of Candor's replies, with how its delivery stands.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Answer {
    pub conversation_id: i64,
    pub item_id: i64,
    pub kind: String,
    pub body: String,
    pub actor: String,
    pub created_at: DateTime<Utc>,
    /// The delivery's state (`pending`, `delivered`, `dead`...); `None` once swept.
    pub state: Option<String>,
    pub remote_url: Option<String>,
}

pub async fn answers(conn: &mut Conn, incident_id: i64) -> Result<Vec<Answer>> {
    type Row = (
        i64,
        i64,
        String,
        String,
        String,
        i64,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT a.conversation_id, a.item_id, a.kind, a.body, a.actor, a.created_at, d.state, d.remote_url \
         FROM inbox_answers a JOIN inbox_conversations c ON c.id = a.conversation_id \
         LEFT JOIN deliveries d ON d.id = a.delivery_id WHERE c.incident_id = $1 ORDER BY a.id",
    )
    .bind(incident_id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Answer {
            conversation_id: r.0,
            item_id: r.1,
            kind: r.2,
            body: r.3,
            actor: r.4,
            created_at: from_ms(r.5),
            state: r.6,
            remote_url: r.7,
        })
        .collect())
}

/// Whether an incident tells those answered that it is fixed, and how many posts were not kept.
pub async fn incident_settings(conn: &mut Conn, incident_id: i64) -> Result<(bool, i64)> {
    let row: Option<(i64, i64)> =
        sqlx::query_as("SELECT tell_fixed, dropped FROM inbox_incidents WHERE incident_id = $1")
            .bind(incident_id)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(row.map_or((true, 0), |(t, d)| (t != 0, d)))
}

pub async fn set_tell_fixed(conn: &mut Conn, incident_id: i64, tell: bool) -> Result<()> {
    sqlx::query(
        "INSERT INTO inbox_incidents (incident_id, tell_fixed, dropped) VALUES ($1, $2, 0) \
         ON CONFLICT (incident_id) DO UPDATE SET tell_fixed = excluded.tell_fixed",
    )
    .bind(incident_id)
    .bind(i64::from(tell))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Marks an answered conversation as told it is fixed; false if it was already (so it is told
/// once).
pub async fn mark_fixed_told(conn: &mut Conn, id: i64, now: DateTime<Utc>) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE inbox_conversations SET fixed_told_at = $2 WHERE id = $1 AND fixed_told_at IS NULL \
         AND answered_at IS NOT NULL",
    )
    .bind(id)
    .bind(ms(now))
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Conversations of open incidents nobody claimed whose first post is older than `before` and
/// that the team was not told about yet.
pub async fn waiting_untold(conn: &mut Conn, before: DateTime<Utc>) -> Result<Vec<Conversation>> {
    let rows: Vec<ConversationRow> = sqlx::query_as(&format!(
        "{CONVERSATION} WHERE claimed_by IS NULL AND waiting_told_at IS NULL AND first_at <= $1 \
         AND incident_id IN (SELECT id FROM incidents WHERE resolved_at IS NULL) ORDER BY id LIMIT 100"
    ))
    .bind(ms(before))
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Marks a conversation as told to the team; false if another instance did it first.
pub async fn mark_waiting_told(conn: &mut Conn, id: i64, now: DateTime<Utc>) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE inbox_conversations SET waiting_told_at = $2 WHERE id = $1 AND waiting_told_at IS NULL",
    )
    .bind(id)
    .bind(ms(now))
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Per open incident, how many conversations nobody claimed whose first post is older than
/// `before` (the dashboard's flag).
pub async fn waiting_by_incident(
    conn: &mut Conn,
    before: DateTime<Utc>,
) -> Result<Vec<(i64, i64)>> {
    Ok(sqlx::query_as(
        "SELECT c.incident_id, COUNT(*) FROM inbox_conversations c JOIN incidents i ON i.id = c.incident_id \
         WHERE i.resolved_at IS NULL AND c.claimed_by IS NULL AND c.first_at <= $1 \
         GROUP BY c.incident_id ORDER BY c.incident_id",
    )
    .bind(ms(before))
    .fetch_all(&mut *conn)
    .await?)
}

/// Conversations in all: how many, how many answered, how many told it is fixed (of resolved
/// incidents' answered ones), and the seconds from first post to first answer, summed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub conversations: i64,
    pub answered: i64,
    pub closable: i64,
    pub closed: i64,
    pub answer_seconds: i64,
}

/// The conversations about incidents started since `since`, as the promise record reads them.
pub async fn record_facts(
    conn: &mut Conn,
    since: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<crate::domain::record::Conversation>> {
    // first post, first answer, told it is fixed, the incident's resolution
    type Row = (i64, Option<i64>, Option<i64>, Option<i64>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT c.first_at, c.answered_at, c.fixed_told_at, i.resolved_at \
         FROM inbox_conversations c JOIN incidents i ON i.id = c.incident_id \
         WHERE i.started_at >= $1",
    )
    .bind(super::ms(since))
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(first, answered, told, resolved)| crate::domain::record::Conversation {
                first_at: super::from_ms(first),
                answered_at: super::opt_from_ms(answered),
                fixed_told_at: super::opt_from_ms(told),
                incident_resolved: resolved.is_some(),
            },
        )
        .collect())
}

pub async fn totals(conn: &mut Conn) -> Result<Totals> {
    let (conversations, answered, closable, closed, answer_ms): (i64, i64, i64, i64, i64) =
        sqlx::query_as(
            "SELECT COUNT(*), COUNT(c.answered_at), \
             CAST(COALESCE(SUM(CASE WHEN c.answered_at IS NOT NULL AND i.resolved_at IS NOT NULL THEN 1 ELSE 0 END), 0) AS BIGINT), \
             COUNT(c.fixed_told_at), \
             CAST(COALESCE(SUM(CASE WHEN c.answered_at IS NOT NULL THEN c.answered_at - c.first_at ELSE 0 END), 0) AS BIGINT) \
             FROM inbox_conversations c JOIN incidents i ON i.id = c.incident_id",
        )
        .fetch_one(&mut *conn)
        .await?;
    Ok(Totals {
        conversations,
        answered,
        closable,
        closed,
        answer_seconds: answer_ms / 1000,
    })
}
