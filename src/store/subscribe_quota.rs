//! How many subscription requests each email address made today (UTC), to cap the
//! confirmation mails one address can be sent a day.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::{Conn, Result};
use crate::domain::subscriber::SubscriberEmail;

/// Counts one request for `email` today and says whether it is within `per_day`. A request
/// over the limit is not counted. Yesterday's and older counts are forgotten.
pub async fn take(
    conn: &mut Conn,
    email: &SubscriberEmail,
    per_day: u32,
    now: DateTime<Utc>,
) -> Result<bool> {
    let day = now.timestamp().div_euclid(86_400);
    let hash = hex::encode(Sha256::digest(email.as_str().to_lowercase().as_bytes()));
    sqlx::query("DELETE FROM subscribe_quota WHERE day < $1")
        .bind(day - 1)
        .execute(&mut *conn)
        .await?;
    let row: Option<(i64,)> = sqlx::query_as(
        "INSERT INTO subscribe_quota (email_hash, day, requests) VALUES ($1, $2, 1) \
         ON CONFLICT (email_hash, day) DO UPDATE SET requests = subscribe_quota.requests + 1 \
         WHERE subscribe_quota.requests < $3 RETURNING requests",
    )
    .bind(&hash)
    .bind(day)
    .bind(i64::from(per_day))
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.is_some())
}
