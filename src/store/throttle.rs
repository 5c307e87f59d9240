//! Sign-in throttling, shared by every instance through the database.
//!
//! Before a password is checked, the handler reserves one attempt on each of the request's keys
//! (`client:<ip>`, `account:<email>`, `account:<email>|<ip>`). A reservation is one conditional
//! `UPDATE`: it succeeds only when the key's `next_at` has come, and it moves `next_at` on in the
//! same statement, so fifty parallel attempts cannot all pass a check that reads first and
//! writes later. Each key has a budget of free attempts; once it is spent every further attempt
//! waits a delay that doubles, from [`FIRST_DELAY`] up to [`MAX_DELAY`]. A key left alone for
//! [`QUIET`] is forgotten, and a successful sign-in forgets the account's keys at once.
//!
//! Nothing is ever locked for a whole address: a client that guesses only slows itself, and an
//! account's own key has a larger budget than one client has against it, so a stranger cannot
//! shut an operator out from everywhere.

use chrono::{DateTime, Duration, Utc};

use super::{from_ms, ms, Conn, Result};

/// Free attempts per client address (any email) before the delays start.
pub const CLIENT_FREE: i64 = 10;
/// Free attempts per account from one client address.
pub const PAIR_FREE: i64 = 5;
/// Free attempts per account from all addresses together.
pub const ACCOUNT_FREE: i64 = 20;
/// The first delay once a key's free attempts are spent; each later one doubles.
pub const FIRST_DELAY: Duration = Duration::seconds(1);
/// The longest delay between two attempts on one key.
pub const MAX_DELAY: Duration = Duration::minutes(15);
/// A key with no attempt for this long starts afresh.
pub const QUIET: Duration = Duration::minutes(15);

/// One key a sign-in attempt counts against, with its budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub name: String,
    pub free: i64,
}

impl Key {
    /// True for the account's keys (its own, and from one client), which a successful sign-in
    /// and an unlock forget; false for the client's own key.
    pub fn is_account(&self) -> bool {
        self.name.starts_with(ACCOUNT)
    }
}

const ACCOUNT: &str = "account:";

/// The account's own key, and the prefix of its keys from each client (`account:<email>|`).
fn account_keys(email: &str) -> (String, String) {
    let own = format!("{ACCOUNT}{email}");
    let per_client = format!("{own}|");
    (own, per_client)
}

/// Every key of an account: its own, or one of its per-client keys (`$1` own, `$2` prefix).
const OF_ACCOUNT: &str = "(throttle_key = $1 OR substr(throttle_key, 1, length($2)) = $2)";

/// The keys a sign-in for `email` from `client` counts against, in the order they are
/// reserved: the account from this client, the account from everywhere, the client. The most
/// specific comes first, so a flood at one account from one client is refused at its own key
/// and never spends the account's budget (which would slow its owner elsewhere) or the
/// client's.
pub fn keys(email: &str, client: Option<std::net::IpAddr>) -> Vec<Key> {
    let (own, per_client) = account_keys(email);
    let mut keys = Vec::with_capacity(3);
    if let Some(ip) = client {
        keys.push(Key {
            name: format!("{per_client}{ip}"),
            free: PAIR_FREE,
        });
    }
    keys.push(Key {
        name: own,
        free: ACCOUNT_FREE,
    });
    if let Some(ip) = client {
        keys.push(Key {
            name: format!("client:{ip}"),
            free: CLIENT_FREE,
        });
    }
    keys
}

/// Reserves one attempt on `key`. `Ok(None)` means the attempt may go ahead; `Ok(Some(t))` that
/// the key allows no attempt before `t`.
pub async fn reserve(
    conn: &mut Conn,
    key: &Key,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>> {
    let now_ms = ms(now);
    sqlx::query(
        "INSERT INTO login_throttle (throttle_key, attempts, delay_ms, next_at, last_at) \
         VALUES ($1, 0, 0, 0, $2) ON CONFLICT (throttle_key) DO NOTHING",
    )
    .bind(&key.name)
    .bind(now_ms)
    .execute(&mut *conn)
    .await?;
    // A key quiet for long enough starts afresh (harmless if two requests both do it: the
    // reservation below moves `last_at` to now, after which this matches nothing).
    sqlx::query(
        "UPDATE login_throttle SET attempts = 0, delay_ms = 0, next_at = 0 \
         WHERE throttle_key = $1 AND last_at < $2 AND next_at <= $3",
    )
    .bind(&key.name)
    .bind(now_ms - QUIET.num_milliseconds())
    .bind(now_ms)
    .execute(&mut *conn)
    .await?;
    // The delay after this attempt: none while free attempts remain, then FIRST_DELAY,
    // doubling up to MAX_DELAY. The right-hand sides read the row as it was before.
    let delay = "CASE WHEN attempts + 1 < $3 THEN 0 \
                 WHEN delay_ms < $4 THEN $4 \
                 WHEN delay_ms * 2 > $5 THEN $5 \
                 ELSE delay_ms * 2 END";
    let granted: Option<(i64,)> = sqlx::query_as(&format!(
        "UPDATE login_throttle SET attempts = attempts + 1, last_at = $2, \
         delay_ms = {delay}, next_at = $2 + {delay} \
         WHERE throttle_key = $1 AND next_at <= $2 RETURNING attempts"
    ))
    .bind(&key.name)
    .bind(now_ms)
    .bind(key.free)
    .bind(FIRST_DELAY.num_milliseconds())
    .bind(MAX_DELAY.num_milliseconds())
    .fetch_optional(&mut *conn)
    .await?;
    if granted.is_some() {
        return Ok(None);
    }
    let (next_at,): (i64,) =
        sqlx::query_as("SELECT next_at FROM login_throttle WHERE throttle_key = $1")
            .bind(&key.name)
            .fetch_one(&mut *conn)
            .await?;
    Ok(Some(from_ms(next_at).max(now)))
}

/// Forgets `key` (after a successful sign-in).
pub async fn clear(conn: &mut Conn, key: &str) -> Result<()> {
    sqlx::query("DELETE FROM login_throttle WHERE throttle_key = $1")
        .bind(key)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Forgets every key of the account `email` (its own and from every client). Returns how many
/// keys were forgotten.
pub async fn unlock_account(conn: &mut Conn, email: &str) -> Result<u64> {
    let (own, per_client) = account_keys(email);
    let r = sqlx::query(&format!("DELETE FROM login_throttle WHERE {OF_ACCOUNT}"))
        .bind(own)
        .bind(per_client)
        .execute(&mut *conn)
        .await?;
    Ok(r.rows_affected())
}

/// What the console shows about an account: its attempts counted within the quiet window
/// (from every client), and until when signing in to it is slowed down somewhere, if it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AccountState {
    pub recent_attempts: i64,
    pub delayed_until: Option<DateTime<Utc>>,
}

pub async fn account_state(
    conn: &mut Conn,
    email: &str,
    now: DateTime<Utc>,
) -> Result<AccountState> {
    let (own, per_client) = account_keys(email);
    let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(&format!(
        "SELECT throttle_key, attempts, next_at, last_at FROM login_throttle WHERE {OF_ACCOUNT}"
    ))
    .bind(&own)
    .bind(per_client)
    .fetch_all(&mut *conn)
    .await?;
    let quiet_since = now - QUIET;
    let mut state = AccountState::default();
    for (key, attempts, next_at, last_at) in rows {
        if key == own && from_ms(last_at) >= quiet_since {
            state.recent_attempts = attempts;
        }
        let until = from_ms(next_at);
        if until > now {
            state.delayed_until = state.delayed_until.max(Some(until));
        }
    }
    Ok(state)
}
