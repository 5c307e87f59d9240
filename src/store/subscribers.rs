//! Email subscribers and who has been sent which delivery.
//!
//! Confirmation tokens are 256 random bits stored only as SHA-256 hashes, with an expiry.
//! Unsubscribe tokens are not stored at all: each is `ID.MAC`, the HMAC-SHA256 of the
//! subscriber's id and a per-subscriber salt under a secret from config, so every mail can carry
//! one and a copy of the database cannot forge one.

use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::Serialize;
use sha2::Sha256;

use super::{from_ms, ms, opt_from_ms, Backend, Conn, Result, StoreError};
use crate::domain::subscriber::SubscriberEmail;

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Which components a subscriber chose: `None` for all of them.
pub fn encode_components(components: Option<&[String]>) -> String {
    match components {
        None | Some([]) => String::new(),
        Some(list) => format!(",{},", list.join(",")),
    }
}

pub fn decode_components(s: &str) -> Option<Vec<String>> {
    if s.is_empty() {
        None
    } else {
        Some(
            s.split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect(),
        )
    }
}

/// True when a subscriber who chose `chosen` (the stored form) wants a message about
/// `components`. A message naming no component goes to everyone.
pub fn wants(chosen: &str, components: &[&str]) -> bool {
    chosen.is_empty()
        || components.is_empty()
        || components
            .iter()
            .any(|c| chosen.contains(&format!(",{c},")))
}

/// Signs and checks unsubscribe tokens.
#[derive(Clone)]
pub struct UnsubscribeKey(Vec<u8>);

impl std::fmt::Debug for UnsubscribeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UnsubscribeKey(***)")
    }
}

impl UnsubscribeKey {
    pub fn new(secret: &str) -> Self {
        Self(secret.as_bytes().to_vec())
    }

    fn mac(&self, id: i64, salt: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(format!("candor-unsubscribe:{id}:{salt}").as_bytes());
        mac
    }

    /// The token for subscriber `id` with salt `salt`.
    pub fn token(&self, id: i64, salt: &str) -> String {
        let tag = self.mac(id, salt).finalize().into_bytes();
        format!(
            "{id}.{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag)
        )
    }

    /// The subscriber id a token names, if its MAC is right for `salt_of(id)`.
    pub fn check(&self, token: &str, salt: &str) -> bool {
        let Some((id, tag)) = token.split_once('.') else {
            return false;
        };
        let (Ok(id), Ok(tag)) = (
            id.parse::<i64>(),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(tag),
        ) else {
            return false;
        };
        self.mac(id, salt).verify_slice(&tag).is_ok()
    }
}

/// The id a token claims (not yet checked).
pub fn token_id(token: &str) -> Option<i64> {
    token.split_once('.')?.0.parse().ok().filter(|i| *i > 0)
}

/// Records a request to subscribe `email` to `components` (`None`: all) and returns the
/// subscriber's id when a confirmation mail is now due: for a new, pending or unsubscribed
/// address, unless one was asked for after `resend_after` (so the form cannot be used to flood
/// an inbox). A confirmed subscription is left as it is (changing it would need the owner's
/// confirmation), and `None` is returned. The caller answers the same either way, so the answer
/// says nothing about whether the address was known.
///
/// No token is issued here: the email channel mints one when it sends the mail (see
/// [`set_confirmation`]), so a pending address's earlier link keeps working until a new mail
/// has actually gone out.
pub async fn subscribe(
    conn: &mut Conn,
    email: &SubscriberEmail,
    components: Option<&[String]>,
    now: DateTime<Utc>,
    resend_after: DateTime<Utc>,
) -> Result<Option<i64>> {
    let chosen = encode_components(components);
    // Insert, or renew a subscription that is not confirmed and has not been asked for lately.
    // `confirm_sent_at` is when a confirmation was last asked for.
    let row: Option<(i64,)> = sqlx::query_as(
        "INSERT INTO subscribers (email, components, confirm_sent_at, unsubscribe_salt, created_at) \
         VALUES ($1, $2, $3, $4, $3) \
         ON CONFLICT (email) DO UPDATE SET components = excluded.components, \
         confirm_sent_at = excluded.confirm_sent_at, unsubscribed_at = NULL, \
         confirmed_at = CASE WHEN subscribers.unsubscribed_at IS NULL THEN subscribers.confirmed_at ELSE NULL END \
         WHERE (subscribers.confirmed_at IS NULL OR subscribers.unsubscribed_at IS NOT NULL) \
         AND (subscribers.confirm_sent_at IS NULL OR subscribers.confirm_sent_at <= $5) \
         RETURNING id",
    )
    .bind(email.as_str())
    .bind(&chosen)
    .bind(ms(now))
    .bind(random_token())
    .bind(ms(resend_after))
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|(id,)| id))
}

/// Notes that a confirmation was asked for again for subscriber `id` (operators' "send the
/// confirmation again"). False when there is no such subscriber waiting for confirmation.
pub async fn ask_again(conn: &mut Conn, id: i64, now: DateTime<Utc>) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE subscribers SET confirm_sent_at = $2 \
         WHERE id = $1 AND confirmed_at IS NULL AND unsubscribed_at IS NULL",
    )
    .bind(id)
    .bind(ms(now))
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// A subscriber waiting for confirmation, as the confirmation mail needs them.
#[derive(Debug, Clone)]
pub struct Pending {
    pub email: SubscriberEmail,
    /// `None` for every component.
    pub components: Option<Vec<String>>,
    /// For the unsubscribe link (someone who never asked can stop further mail in one click).
    pub unsubscribe_salt: String,
}

/// Subscriber `id` if they are still waiting for confirmation (not confirmed, unsubscribed or
/// removed since the mail was asked for).
pub async fn pending(conn: &mut Conn, id: i64) -> Result<Option<Pending>> {
    let row: Option<(String, String, String)> = sqlx::query_as(
        "SELECT email, components, unsubscribe_salt FROM subscribers \
         WHERE id = $1 AND confirmed_at IS NULL AND unsubscribed_at IS NULL",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|(email, c, unsubscribe_salt)| {
        Ok(Pending {
            email: parse_stored(&email)?,
            components: decode_components(&c),
            unsubscribe_salt,
        })
    })
    .transpose()
}

/// A new confirmation token: 256 random bits, URL-safe. Only its hash is ever stored.
pub fn confirmation_token() -> String {
    random_token()
}

/// Makes `token` the one confirmation link of pending subscriber `id`, valid until `expires`
/// (the one before stops working). Called once the mail carrying it was handed over. False
/// when the subscriber is no longer waiting for confirmation.
pub async fn set_confirmation(
    conn: &mut Conn,
    id: i64,
    token: &str,
    expires: DateTime<Utc>,
) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE subscribers SET confirm_hash = $2, confirm_expires_at = $3 \
         WHERE id = $1 AND confirmed_at IS NULL AND unsubscribed_at IS NULL",
    )
    .bind(id)
    .bind(crate::store::tokens::hash(token))
    .bind(ms(expires))
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

fn parse_stored(email: &str) -> Result<SubscriberEmail> {
    SubscriberEmail::parse(email)
        .map_err(|e| StoreError::Corrupt(format!("stored subscriber address: {e}")))
}

/// Confirms the subscription a confirmation token belongs to, if it has not expired. Returns
/// the subscriber's id if it did (an unknown, used or expired token does nothing).
pub async fn confirm(conn: &mut Conn, token: &str, now: DateTime<Utc>) -> Result<Option<i64>> {
    let row: Option<(i64,)> = sqlx::query_as(
        "UPDATE subscribers SET confirmed_at = $2, confirm_hash = NULL, confirm_expires_at = NULL \
         WHERE confirm_hash = $1 AND confirm_expires_at > $2 AND unsubscribed_at IS NULL \
         RETURNING id",
    )
    .bind(crate::store::tokens::hash(token))
    .bind(ms(now))
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|(id,)| id))
}

/// The unsubscribe salt of subscriber `id`, if there is one.
pub async fn salt(conn: &mut Conn, id: i64) -> Result<Option<String>> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT unsubscribe_salt FROM subscribers WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(row.map(|(s,)| s))
}

/// A valid unsubscribe link's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsubscribed {
    pub id: i64,
    /// False when they had unsubscribed already (the link in an old mail keeps working).
    pub changed: bool,
}

/// Unsubscribes whoever `token` belongs to. `None` when the token is not valid; unsubscribing
/// twice is still valid.
pub async fn unsubscribe(
    conn: &mut Conn,
    key: &UnsubscribeKey,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Option<Unsubscribed>> {
    let Some(id) = token_id(token) else {
        return Ok(None);
    };
    let Some(salt) = salt(conn, id).await? else {
        return Ok(None);
    };
    if !key.check(token, &salt) {
        return Ok(None);
    }
    let r = sqlx::query(
        "UPDATE subscribers SET unsubscribed_at = $2, confirm_hash = NULL WHERE id = $1 \
         AND unsubscribed_at IS NULL",
    )
    .bind(id)
    .bind(ms(now))
    .execute(&mut *conn)
    .await?;
    Ok(Some(Unsubscribed {
        id,
        changed: r.rows_affected() == 1,
    }))
}

/// Removes a subscriber for good (an operator's "remove"). Their send records stay, anonymous.
pub async fn remove(conn: &mut Conn, id: i64) -> Result<bool> {
    let r = sqlx::query("DELETE FROM subscribers WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// One subscriber as the fan-out reads it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Recipient {
    pub id: i64,
    pub email: String,
    pub components: String,
    pub unsubscribe_salt: String,
    /// The first other delivery of the same incident on the same channel that reached them:
    /// the mail this one replies to (`None`: this is their first mail about it).
    pub first_delivery: Option<i64>,
}

/// The next page of confirmed, subscribed recipients after id `after` that delivery
/// `delivery_id` (about incident `incident_id`, on channel `channel`) has not reached yet, by
/// id (keyset pagination: each page costs the same however far into the list it is, and
/// nothing is held between pages but the last id), each with the incident's first delivery
/// that reached them.
pub async fn recipients_page(
    conn: &mut Conn,
    delivery_id: i64,
    (incident_id, channel): (i64, &str),
    got_update: Option<i64>,
    after: i64,
    limit: i64,
) -> Result<Vec<Recipient>> {
    // `got_update` (a correction): only those who were sent that update here.
    Ok(sqlx::query_as(
        "SELECT s.id, s.email, s.components, s.unsubscribe_salt, \
           (SELECT MIN(d.id) FROM deliveries d \
              JOIN email_sends f ON f.delivery_id = d.id AND f.subscriber_id = s.id \
            WHERE d.incident_id = $4 AND d.channel = $5 AND d.id <> $1 AND f.state = 'sent') \
           AS first_delivery \
         FROM subscribers s \
         WHERE s.confirmed_at IS NOT NULL AND s.unsubscribed_at IS NULL AND s.id > $2 \
         AND NOT EXISTS (SELECT 1 FROM email_sends e WHERE e.delivery_id = $1 AND e.subscriber_id = s.id) \
         AND ($6 = 0 OR EXISTS (SELECT 1 FROM deliveries g \
              JOIN email_sends h ON h.delivery_id = g.id AND h.subscriber_id = s.id \
            WHERE g.update_id = $6 AND g.channel = $5 AND g.id <> $1 AND h.state = 'sent')) \
         ORDER BY s.id LIMIT $3",
    )
    .bind(delivery_id)
    .bind(after)
    .bind(limit)
    .bind(incident_id)
    .bind(channel)
    .bind(got_update.unwrap_or(0))
    .fetch_all(&mut *conn)
    .await?)
}

/// The outcome of one recipient's send.
#[derive(Debug, Clone)]
pub struct SendRecord {
    pub subscriber_id: i64,
    /// `None` when the server accepted the message; else its refusal (permanent: not retried).
    pub error: Option<String>,
}

/// Records recipients' outcomes for a delivery, in one statement (a row that exists already is
/// left alone). The batch goes in as one JSON array (`[[subscriber_id, error], ...]`), so the
/// statement's text is the same whatever its size and is prepared once: a multi-row VALUES
/// list would be a new statement (parsed anew, with thousands of parameters) for every batch
/// size a fan-out happens to record.
pub async fn record_sends(
    conn: &mut Conn,
    backend: Backend,
    delivery_id: i64,
    records: &[SendRecord],
    now: DateTime<Utc>,
) -> Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    let rows: Vec<(i64, Option<&str>)> = records
        .iter()
        .map(|r| (r.subscriber_id, r.error.as_deref()))
        .collect();
    let rows = serde_json::to_string(&rows).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let sql = match backend {
        // `WHERE true`: SQLite's parser needs it between INSERT ... SELECT and ON CONFLICT.
        Backend::Sqlite => {
            "INSERT INTO email_sends (delivery_id, subscriber_id, state, error, sent_at) \
             SELECT $1, j.value ->> 0, CASE WHEN j.value ->> 1 IS NULL THEN 'sent' ELSE 'failed' END, \
             j.value ->> 1, $2 FROM json_each($3) j WHERE true \
             ON CONFLICT (delivery_id, subscriber_id) DO NOTHING"
        }
        Backend::Postgres => {
            "INSERT INTO email_sends (delivery_id, subscriber_id, state, error, sent_at) \
             SELECT $1, (j.value ->> 0)::BIGINT, CASE WHEN j.value ->> 1 IS NULL THEN 'sent' ELSE 'failed' END, \
             j.value ->> 1, $2 FROM json_array_elements($3::JSON) j \
             ON CONFLICT (delivery_id, subscriber_id) DO NOTHING"
        }
    };
    sqlx::query(sql)
        .bind(delivery_id)
        .bind(ms(now))
        .bind(rows)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// How far one email delivery got: what the console shows as "reached N subscribers".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Reach {
    pub sent: i64,
    pub failed: i64,
}

pub async fn reach(conn: &mut Conn, delivery_id: i64) -> Result<Reach> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT state, COUNT(*) FROM email_sends WHERE delivery_id = $1 GROUP BY state",
    )
    .bind(delivery_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut r = Reach::default();
    for (state, n) in rows {
        match state.as_str() {
            "sent" => r.sent = n,
            _ => r.failed += n,
        }
    }
    Ok(r)
}

/// Subscriber numbers for the console: how many are confirmed and pending, overall and by
/// component (a subscriber to everything counts under `all`, not under each component).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Counts {
    pub confirmed: i64,
    pub pending: i64,
    pub unsubscribed: i64,
    /// Confirmed subscribers to every component.
    pub all_components: i64,
    /// Confirmed subscribers who chose this component, by id.
    pub by_component: std::collections::BTreeMap<String, i64>,
}

pub async fn counts(conn: &mut Conn, component_ids: &[&str]) -> Result<Counts> {
    let (confirmed, pending, unsubscribed, all): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT \
           COALESCE(SUM(CASE WHEN confirmed_at IS NOT NULL AND unsubscribed_at IS NULL THEN 1 ELSE 0 END), 0), \
           COALESCE(SUM(CASE WHEN confirmed_at IS NULL AND unsubscribed_at IS NULL THEN 1 ELSE 0 END), 0), \
           COALESCE(SUM(CASE WHEN unsubscribed_at IS NOT NULL THEN 1 ELSE 0 END), 0), \
           COALESCE(SUM(CASE WHEN confirmed_at IS NOT NULL AND unsubscribed_at IS NULL AND components = '' THEN 1 ELSE 0 END), 0) \
         FROM subscribers",
    )
    .fetch_one(&mut *conn)
    .await?;
    let mut by_component = std::collections::BTreeMap::new();
    for id in component_ids {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM subscribers WHERE confirmed_at IS NOT NULL AND unsubscribed_at IS NULL \
             AND components LIKE $1",
        )
        .bind(format!("%,{id},%"))
        .fetch_one(&mut *conn)
        .await?;
        by_component.insert(id.to_string(), n);
    }
    Ok(Counts {
        confirmed,
        pending,
        unsubscribed,
        all_components: all,
        by_component,
    })
}

/// A subscriber as operators see it (through the admin API; never logged).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SubscriberInfo {
    pub id: i64,
    pub email: String,
    pub components: Option<Vec<String>>,
    pub created_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub unsubscribed_at: Option<DateTime<Utc>>,
}

type InfoRow = (i64, String, String, i64, Option<i64>, Option<i64>);

/// Subscribers after id `after`, by id, `limit` at a time.
pub async fn list(conn: &mut Conn, after: i64, limit: i64) -> Result<Vec<SubscriberInfo>> {
    let rows: Vec<InfoRow> = sqlx::query_as(
        "SELECT id, email, components, created_at, confirmed_at, unsubscribed_at FROM subscribers \
         WHERE id > $1 ORDER BY id LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, email, c, created, confirmed, unsub)| SubscriberInfo {
            id,
            email,
            components: decode_components(&c),
            created_at: from_ms(created),
            confirmed_at: opt_from_ms(confirmed),
            unsubscribed_at: opt_from_ms(unsub),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsubscribe_tokens_check_their_mac() {
        let k = UnsubscribeKey::new("a-long-enough-secret-for-tests-0123456789");
        let t = k.token(42, "salt");
        assert_eq!(token_id(&t), Some(42));
        assert!(k.check(&t, "salt"));
        assert!(!k.check(&t, "other-salt"));
        assert!(!k.check(&t.replace("42.", "43."), "salt"));
        assert!(!UnsubscribeKey::new("another-secret").check(&t, "salt"));
        assert!(!k.check("garbage", "salt"));
    }

    #[test]
    fn component_choices_match() {
        let some = encode_components(Some(&["api".to_string(), "web".to_string()]));
        assert!(wants(&some, &["api"]));
        assert!(!wants(&some, &["email"]));
        assert!(!wants(&some, &["ap"]));
        assert!(wants("", &["email"]));
        assert!(wants(&some, &[]));
        assert_eq!(decode_components(&some).unwrap(), vec!["api", "web"]);
    }
}
