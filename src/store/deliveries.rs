//! The outbox: one row per message per channel, written in the same transaction as the update it
//! carries, then claimed by workers with a lease.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{from_ms, ms, opt_from_ms, parse_enum, Backend, Conn, Result};
use crate::domain::{Audience, DeliveryState};

pub struct NewDelivery<'a> {
    pub incident_id: i64,
    pub update_id: Option<i64>,
    pub channel: &'a str,
    pub audience: Audience,
    /// The message, as JSON: the same facts for every channel.
    pub payload: &'a str,
    pub now: DateTime<Utc>,
}

pub async fn insert(conn: &mut Conn, d: &NewDelivery<'_>) -> Result<i64> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO deliveries (incident_id, update_id, channel, audience, payload, state, attempts, \
         next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6) RETURNING id",
    )
    .bind(d.incident_id)
    .bind(d.update_id)
    .bind(d.channel)
    .bind(d.audience.as_str())
    .bind(d.payload)
    .bind(ms(d.now))
    .fetch_one(&mut *conn)
    .await?;
    Ok(id)
}

/// Queues a confirmation mail for one subscriber on the email channel `channel`: a delivery of
/// no incident, for the `subscriber` audience, whose payload names the subscriber (never the
/// address or a token: the channel reads the one and mints the other when it sends).
pub async fn insert_confirmation(
    conn: &mut Conn,
    channel: &str,
    payload: &str,
    now: DateTime<Utc>,
) -> Result<i64> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO deliveries (incident_id, update_id, channel, audience, payload, state, attempts, \
         next_attempt_at, created_at) VALUES (NULL, NULL, $1, $2, $3, 'pending', 0, $4, $4) RETURNING id",
    )
    .bind(channel)
    .bind(Audience::Subscriber.as_str())
    .bind(payload)
    .bind(ms(now))
    .fetch_one(&mut *conn)
    .await?;
    Ok(id)
}

/// True when a confirmation delivery with exactly this payload is still waiting or being sent
/// (so asking again does not queue a second mail whose link would replace the first one's).
pub async fn confirmation_queued(conn: &mut Conn, channel: &str, payload: &str) -> Result<bool> {
    let row: Option<(i64,)> = sqlx::query_as(
        "SELECT id FROM deliveries WHERE incident_id IS NULL AND channel = $1 AND audience = $2 \
         AND state IN ('pending', 'in_flight') AND payload = $3 LIMIT 1",
    )
    .bind(channel)
    .bind(Audience::Subscriber.as_str())
    .bind(payload)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.is_some())
}

/// A delivery a worker has claimed.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    pub id: i64,
    /// `None` for a delivery of no incident (a subscriber's confirmation mail).
    pub incident_id: Option<i64>,
    pub update_id: Option<i64>,
    /// Whom it is for (`public`, `ops`, `subscriber`): says what the payload holds.
    pub audience: String,
    pub payload: String,
    /// Attempts including this one.
    pub attempts: i64,
    /// When its retry window opened (ms since the epoch): its creation, or the last "retry now".
    pub retry_since: i64,
}

// A delivery waits while an earlier one of the same incident on the same channel is unfinished,
// so each channel publishes an incident's updates in order (and replies can thread under the
// first); a delivery of no incident (NULL never equals NULL) waits for nothing. The predicates
// match the partial indexes in the migrations word for word.
macro_rules! claim_pending_sql {
    ($lock:literal) => {
        concat!(
            "UPDATE deliveries SET state = 'in_flight', lease_owner = $1, lease_expires_at = $2, \
             attempts = attempts + 1 WHERE id IN (SELECT d.id FROM deliveries d \
             WHERE d.channel = $3 AND d.state = 'pending' AND d.next_attempt_at <= $4 \
             AND NOT EXISTS (SELECT 1 FROM deliveries e WHERE e.incident_id = d.incident_id \
               AND e.channel = d.channel AND e.id < d.id AND e.state IN ('pending', 'in_flight')) \
             ORDER BY d.next_attempt_at, d.id LIMIT $5",
            $lock,
            ") RETURNING id, incident_id, update_id, audience, payload, attempts, \
             COALESCE(retry_since, created_at) AS retry_since"
        )
    };
}

// Deliveries whose worker died mid-send: the lease ran out without an outcome.
macro_rules! claim_expired_sql {
    ($lock:literal) => {
        concat!(
            "UPDATE deliveries SET lease_owner = $1, lease_expires_at = $2, attempts = attempts + 1 \
             WHERE id IN (SELECT d.id FROM deliveries d WHERE d.channel = $3 AND d.state = 'in_flight' \
             AND d.lease_expires_at <= $4 ORDER BY d.lease_expires_at LIMIT $5",
            $lock,
            ") RETURNING id, incident_id, update_id, audience, payload, attempts, \
             COALESCE(retry_since, created_at) AS retry_since"
        )
    };
}

/// Claims up to `limit` due deliveries of `channel` for `lease_owner` until `lease_until`:
/// first those whose lease expired, then pending ones, oldest due first. Each statement is
/// atomic on its own (SQLite has one writer at a time; PostgreSQL skips rows another worker
/// has locked).
pub async fn claim(
    conn: &mut Conn,
    backend: Backend,
    channel: &str,
    lease_owner: &str,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<Claimed>> {
    let (expired, pending) = match backend {
        Backend::Postgres => (
            claim_expired_sql!(" FOR UPDATE OF d SKIP LOCKED"),
            claim_pending_sql!(" FOR UPDATE OF d SKIP LOCKED"),
        ),
        Backend::Sqlite => (claim_expired_sql!(""), claim_pending_sql!("")),
    };
    let mut rows = Vec::new();
    for sql in [expired, pending] {
        let left = limit - rows.len() as i64;
        if left <= 0 {
            break;
        }
        let claimed: Vec<Claimed> = sqlx::query_as(sql)
            .bind(lease_owner)
            .bind(ms(lease_until))
            .bind(channel)
            .bind(ms(now))
            .bind(left)
            .fetch_all(&mut *conn)
            .await?;
        rows.extend(claimed);
    }
    rows.sort_by_key(|c| c.id);
    Ok(rows)
}

/// How many deliveries of `channel` a claim at `now` could take, up to `limit` (a rate-limited
/// lane asks before taking permits, so an idle lane spends none).
pub async fn count_due(
    conn: &mut Conn,
    channel: &str,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<i64> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM (SELECT d.id FROM deliveries d WHERE d.channel = $1 AND ( \
           (d.state = 'pending' AND d.next_attempt_at <= $2 AND NOT EXISTS (SELECT 1 FROM deliveries e \
             WHERE e.incident_id = d.incident_id AND e.channel = d.channel AND e.id < d.id \
             AND e.state IN ('pending', 'in_flight'))) \
           OR (d.state = 'in_flight' AND d.lease_expires_at <= $2)) LIMIT $3) due",
    )
    .bind(channel)
    .bind(ms(now))
    .bind(limit)
    .fetch_one(&mut *conn)
    .await?;
    Ok(n)
}

/// Extends the lease of a delivery still held by `lease_owner` (long deliveries renew it as
/// they go). Returns false if the lease was lost.
pub async fn renew_lease(
    conn: &mut Conn,
    id: i64,
    lease_owner: &str,
    until: DateTime<Utc>,
) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE deliveries SET lease_expires_at = $3 WHERE id = $1 AND lease_owner = $2 \
         AND state = 'in_flight'",
    )
    .bind(id)
    .bind(lease_owner)
    .bind(ms(until))
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Records success. Returns false if the lease was lost meanwhile.
pub async fn mark_delivered(
    conn: &mut Conn,
    id: i64,
    lease_owner: &str,
    remote_id: Option<&str>,
    remote_url: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE deliveries SET state = 'delivered', remote_id = $3, remote_url = $4, delivered_at = $5, \
         last_error = NULL, lease_owner = NULL, lease_expires_at = NULL WHERE id = $1 AND lease_owner = $2",
    )
    .bind(id)
    .bind(lease_owner)
    .bind(remote_id)
    .bind(remote_url)
    .bind(ms(now))
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Puts a failed delivery back to wait until `retry_at`.
pub async fn mark_retry(
    conn: &mut Conn,
    id: i64,
    lease_owner: &str,
    retry_at: DateTime<Utc>,
    error: &str,
) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE deliveries SET state = 'pending', next_attempt_at = $3, last_error = $4, lease_owner = NULL, \
         lease_expires_at = NULL WHERE id = $1 AND lease_owner = $2",
    )
    .bind(id)
    .bind(lease_owner)
    .bind(ms(retry_at))
    .bind(error)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Parks a delivery that will not succeed (permanent error or attempts used up).
pub async fn mark_dead(conn: &mut Conn, id: i64, lease_owner: &str, error: &str) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE deliveries SET state = 'dead', last_error = $3, lease_owner = NULL, lease_expires_at = NULL \
         WHERE id = $1 AND lease_owner = $2",
    )
    .bind(id)
    .bind(lease_owner)
    .bind(error)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// What a worker learned about one delivery it holds, to be recorded on its row.
#[derive(Debug, Clone)]
pub enum Outcome {
    Delivered {
        remote_id: Option<String>,
        remote_url: Option<String>,
        at: DateTime<Utc>,
    },
    Retry {
        at: DateTime<Utc>,
        error: String,
    },
    Dead {
        error: String,
    },
}

/// Records a batch of outcomes of deliveries held by `lease_owner` (one transaction, so one
/// commit for the lot). For each, in order: false if its lease was lost meanwhile.
pub async fn record(
    conn: &mut Conn,
    lease_owner: &str,
    outcomes: &[(i64, Outcome)],
) -> Result<Vec<bool>> {
    let mut kept = Vec::with_capacity(outcomes.len());
    for (id, o) in outcomes {
        kept.push(match o {
            Outcome::Delivered {
                remote_id,
                remote_url,
                at,
            } => {
                mark_delivered(
                    conn,
                    *id,
                    lease_owner,
                    remote_id.as_deref(),
                    remote_url.as_deref(),
                    *at,
                )
                .await?
            }
            Outcome::Retry { at, error } => mark_retry(conn, *id, lease_owner, *at, error).await?,
            Outcome::Dead { error } => mark_dead(conn, *id, lease_owner, error).await?,
        });
    }
    Ok(kept)
}

/// Hands back everything `lease_prefix` holds (graceful shutdown), due again at once.
pub async fn release_all(conn: &mut Conn, lease_prefix: &str, now: DateTime<Utc>) -> Result<u64> {
    let r = sqlx::query(
        "UPDATE deliveries SET state = 'pending', next_attempt_at = $2, attempts = attempts - 1, \
         lease_owner = NULL, lease_expires_at = NULL WHERE state = 'in_flight' AND lease_owner LIKE $1 ESCAPE '!'",
    )
    .bind(format!("{}%", lease_prefix.replace('!', "!!").replace('%', "!%").replace('_', "!_")))
    .bind(ms(now))
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected())
}

/// The remote id of the first message delivered for this incident on this channel: the post
/// that later updates reply to.
pub async fn thread_root(
    conn: &mut Conn,
    incident_id: i64,
    channel: &str,
) -> Result<Option<String>> {
    thread_post(conn, incident_id, channel, "ASC").await
}

/// The remote id of the latest message delivered for this incident on this channel: the post
/// the next update answers, so a thread reads in order.
pub async fn thread_parent(
    conn: &mut Conn,
    incident_id: i64,
    channel: &str,
) -> Result<Option<String>> {
    thread_post(conn, incident_id, channel, "DESC").await
}

/// The remote id of an update's own post on a channel (its first delivery there that has one,
/// not counting a correction's): what a correction edits on networks that edit.
pub async fn remote_id_of_update(
    conn: &mut Conn,
    update_id: i64,
    channel: &str,
) -> Result<Option<String>> {
    let row: Option<(Option<String>,)> = sqlx::query_as(
        "SELECT remote_id FROM deliveries WHERE update_id = $1 AND channel = $2 \
         AND audience = 'public' AND state = 'delivered' AND remote_id IS NOT NULL \
         ORDER BY id LIMIT 1",
    )
    .bind(update_id)
    .bind(channel)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.and_then(|(r,)| r))
}

/// The channels an update was sent to (public deliveries that did not die), and one of its
/// payloads (every public channel gets the same message).
pub async fn reach_of_update(
    conn: &mut Conn,
    update_id: i64,
) -> Result<(Vec<String>, Option<String>)> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT channel, payload FROM deliveries WHERE update_id = $1 AND audience = 'public' \
         AND state <> 'dead' ORDER BY id",
    )
    .bind(update_id)
    .fetch_all(&mut *conn)
    .await?;
    let payload = rows.first().map(|(_, p)| p.clone());
    let mut channels: Vec<String> = rows.into_iter().map(|(c, _)| c).collect();
    channels.dedup();
    let mut seen = std::collections::BTreeSet::new();
    channels.retain(|c| seen.insert(c.clone()));
    Ok((channels, payload))
}

async fn thread_post(
    conn: &mut Conn,
    incident_id: i64,
    channel: &str,
    order: &'static str,
) -> Result<Option<String>> {
    let sql = format!(
        "SELECT remote_id FROM deliveries WHERE incident_id = $1 AND channel = $2 AND audience = 'public' \
         AND state = 'delivered' AND remote_id IS NOT NULL ORDER BY id {order} LIMIT 1"
    );
    let row: Option<(Option<String>,)> = sqlx::query_as(&sql)
        .bind(incident_id)
        .bind(channel)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.and_then(|(r,)| r))
}

/// Every delivery of this incident to its public on this channel: its id, its update and the
/// remote id it recorded (the email channel's Message-IDs, which later mails reply to).
pub async fn thread_messages(
    conn: &mut Conn,
    incident_id: i64,
    channel: &str,
) -> Result<Vec<(i64, Option<i64>, Option<String>)>> {
    Ok(sqlx::query_as(
        "SELECT id, update_id, remote_id FROM deliveries WHERE incident_id = $1 AND channel = $2 \
         AND audience = 'public' ORDER BY id",
    )
    .bind(incident_id)
    .bind(channel)
    .fetch_all(&mut *conn)
    .await?)
}

/// A delivery as shown to operators and scripts.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Delivery {
    pub id: i64,
    pub update_id: Option<i64>,
    pub channel: String,
    pub audience: Audience,
    pub state: DeliveryState,
    pub attempts: i64,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub remote_id: Option<String>,
    pub remote_url: Option<String>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    id: i64,
    update_id: Option<i64>,
    channel: String,
    audience: String,
    state: String,
    attempts: i64,
    next_attempt_at: i64,
    remote_id: Option<String>,
    remote_url: Option<String>,
    last_error: Option<String>,
    created_at: i64,
    delivered_at: Option<i64>,
}

impl TryFrom<DeliveryRow> for Delivery {
    type Error = super::StoreError;
    fn try_from(r: DeliveryRow) -> Result<Self> {
        let state: DeliveryState = parse_enum(&r.state)?;
        Ok(Delivery {
            id: r.id,
            update_id: r.update_id,
            channel: r.channel,
            audience: parse_enum(&r.audience)?,
            next_attempt_at: (state == DeliveryState::Pending).then(|| from_ms(r.next_attempt_at)),
            state,
            attempts: r.attempts,
            remote_id: r.remote_id,
            remote_url: r.remote_url,
            last_error: r.last_error,
            created_at: from_ms(r.created_at),
            delivered_at: opt_from_ms(r.delivered_at),
        })
    }
}

pub async fn for_incident(conn: &mut Conn, incident_id: i64) -> Result<Vec<Delivery>> {
    let rows: Vec<DeliveryRow> = sqlx::query_as(
        "SELECT id, update_id, channel, audience, state, attempts, next_attempt_at, remote_id, remote_url, \
         last_error, created_at, delivered_at FROM deliveries WHERE incident_id = $1 ORDER BY id",
    )
    .bind(incident_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter().map(Delivery::try_from).collect()
}

/// The newest delivery on `channel` (a mirror's last publish).
pub async fn latest_on_channel(conn: &mut Conn, channel: &str) -> Result<Option<Delivery>> {
    let row: Option<DeliveryRow> = sqlx::query_as(
        "SELECT id, update_id, channel, audience, state, attempts, next_attempt_at, remote_id, remote_url, \
         last_error, created_at, delivered_at FROM deliveries WHERE channel = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(channel)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(Delivery::try_from).transpose()
}

/// How many deliveries are in each state (for health and tests).
pub async fn count_by_state(conn: &mut Conn) -> Result<Vec<(String, i64)>> {
    Ok(
        sqlx::query_as("SELECT state, COUNT(*) FROM deliveries GROUP BY state ORDER BY state")
            .fetch_all(&mut *conn)
            .await?,
    )
}

/// Deliveries not yet finished (pending or in flight).
pub async fn unfinished(conn: &mut Conn) -> Result<i64> {
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM deliveries WHERE state IN ('pending', 'in_flight')")
            .fetch_one(&mut *conn)
            .await?;
    Ok(n)
}

#[derive(sqlx::FromRow)]
struct TroubledRow {
    incident_id: Option<i64>,
    #[sqlx(flatten)]
    row: DeliveryRow,
}

/// The newest deliveries that are dead or have failed at least once and wait to be retried,
/// with their incident's id (for the console's dashboard; `None` for a confirmation mail).
pub async fn troubled(conn: &mut Conn, limit: i64) -> Result<Vec<(Option<i64>, Delivery)>> {
    let rows: Vec<TroubledRow> = sqlx::query_as(
        "SELECT incident_id, id, update_id, channel, audience, state, attempts, next_attempt_at, remote_id, \
         remote_url, last_error, created_at, delivered_at FROM deliveries \
         WHERE state = 'dead' OR (state IN ('pending', 'in_flight') AND last_error IS NOT NULL) \
         ORDER BY id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter()
        .map(|r| Ok((r.incident_id, Delivery::try_from(r.row)?)))
        .collect()
}

/// Puts a dead delivery back in its lane, due now, with a fresh count of attempts ("retry now"
/// in the console). Returns its incident's id (if it has one) and channel, or `None` if it is
/// not dead.
pub async fn retry_dead(
    conn: &mut Conn,
    id: i64,
    now: DateTime<Utc>,
) -> Result<Option<(Option<i64>, String)>> {
    let row: Option<(Option<i64>, String)> = sqlx::query_as(
        "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = $2, retry_since = $2, \
         lease_owner = NULL, lease_expires_at = NULL WHERE id = $1 AND state = 'dead' \
         RETURNING incident_id, channel",
    )
    .bind(id)
    .bind(ms(now))
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row)
}
