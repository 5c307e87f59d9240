//! The inbox: customers' replies to an incident's posts and mentions of the account, read from
//! the Mastodon and Bluesky channels named in `inbox.channels`, through the same channel
//! objects (HTTP client, token, Bluesky session) that post.
//!
//! One supervised loop per instance (`inbox`) asks, at the clock's time, each channel whose
//! `next_poll_at` has come for what is new after its stored cursor, a few pages at most per
//! pass. Each page's posts and the cursor after them are written in one transaction
//! (`commands::inbox::receive`), and a post is kept once per channel (its remote id is unique),
//! so a restart neither misses nor repeats anything. The next poll waits for `inbox.poll_every`,
//! or longer when the network's rate-limit headers say its budget is nearly spent, or after a
//! `429` for its `Retry-After`, or a growing backoff after a failure; all kept in the database.
//! After polling, conversations left unclaimed too long are told to the ops channels, once.

pub mod bluesky;
pub mod mastodon;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::channels::{Channel, SendError};
use crate::clock::Clock;
use crate::commands::{self, CommandError, Env, Unit};
use crate::domain::inbox::{failure_backoff, Rate};
use crate::domain::to_chrono;
use crate::store::{inbox as store, Db, StoreError};
use crate::supervise::{Loops, RestartBackoff};

/// Pages read from one channel in one pass at most (the rest waits for the next pass).
const PAGES_PER_PASS: usize = 5;

/// One inbound post, as a network gave it (its text already plain and bounded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Post {
    /// Mastodon's status id; Bluesky's "`uri` `cid`".
    pub remote_id: String,
    /// The posts it answers, nearest first, as keys of Candor's own posts
    /// ([`Listener::key`]).
    pub thread: Vec<String>,
    /// Bluesky: the thread's root ("`uri` `cid`").
    pub root_ref: Option<String>,
    /// Mastodon's account id; Bluesky's DID.
    pub author_id: String,
    /// Mastodon's `acct`; Bluesky's handle.
    pub handle: String,
    pub name: String,
    pub text: String,
    pub url: Option<String>,
    pub posted_at: DateTime<Utc>,
}

/// What one request for notifications gave.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub posts: Vec<Post>,
    /// The cursor to store once these posts are kept.
    pub cursor: Option<String>,
    /// Whether another page is waiting right after this one.
    pub more: bool,
    /// The rate-limit headers of the last answer.
    pub rate: Rate,
}

/// The inbox's side of a channel: reading the account's notifications.
#[async_trait]
pub trait Listener: Send + Sync {
    /// `mastodon` or `bluesky`.
    fn network(&self) -> &'static str;
    /// The key under which a delivery's remote id is matched against a post's thread (Mastodon:
    /// the status id; Bluesky: the at-uri).
    fn key(&self, remote_id: &str) -> String {
        remote_id.to_string()
    }
    /// The next page of notifications after `cursor` (mentions and replies only). `known`
    /// holds keys of Candor's own posts (so a thread is looked up only when needed).
    /// A reply's length as the network counts it, and the network's limit.
    fn measure(&self, reply: &crate::channels::Reply) -> (usize, usize);
    async fn poll(
        &self,
        cursor: Option<&str>,
        known: &HashSet<String>,
        now: DateTime<Utc>,
    ) -> Result<Page, SendError>;
}

/// What one pass did, for tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassReport {
    /// Channels asked.
    pub polled: usize,
    /// New posts kept.
    pub received: usize,
    /// Conversations told to the ops channels as waiting.
    pub told_waiting: usize,
}

/// The inbox poller of one instance.
pub struct Inbox {
    db: Db,
    clock: Arc<dyn Clock>,
    env: Env,
    channels: BTreeMap<String, Arc<dyn Channel>>,
    changes: watch::Sender<u64>,
}

impl Inbox {
    pub fn new(
        db: Db,
        clock: Arc<dyn Clock>,
        env: Env,
        channels: &BTreeMap<String, Arc<dyn Channel>>,
        changes: watch::Sender<u64>,
    ) -> Self {
        let channels = env
            .config
            .inbox
            .channels
            .iter()
            .filter_map(|id| Some((id.clone(), channels.get(id)?.clone())))
            .collect();
        Self {
            db,
            clock,
            env,
            channels,
            changes,
        }
    }

    /// One pass at the clock's time: every channel that is due is polled, then conversations
    /// waiting too long are told to the team.
    pub async fn run_once(&self) -> Result<PassReport, CommandError> {
        let mut report = PassReport::default();
        for (id, channel) in &self.channels {
            let Some(listener) = channel.listener() else {
                continue;
            };
            if let Some(n) = self.poll_channel(id, listener).await? {
                report.polled += 1;
                report.received += n;
            }
        }
        let now = self.clock.now();
        // A write only when some conversation is due to be told (each pass is a second apart).
        let before = now - to_chrono(self.env.config.inbox.unclaimed_after);
        let due = {
            let mut conn = self.db.pool().acquire().await.map_err(StoreError::from)?;
            !store::waiting_untold(&mut conn, before).await?.is_empty()
        };
        if due {
            let mut unit = Unit::begin(&self.db, Some(self.changes.clone())).await?;
            report.told_waiting = commands::inbox::tell_waiting(&self.env, unit.tx(), now).await?;
            unit.commit().await?;
        }
        Ok(report)
    }

    /// Polls one channel if it is due; `None` if it was not.
    async fn poll_channel(
        &self,
        id: &str,
        listener: &dyn Listener,
    ) -> Result<Option<usize>, CommandError> {
        let now = self.clock.now();
        let source = {
            let mut conn = self.db.pool().acquire().await.map_err(StoreError::from)?;
            store::source(&mut conn, id).await?
        };
        if source.as_ref().is_some_and(|s| s.next_poll_at > now) {
            return Ok(None);
        }
        let (known, open) = {
            let mut conn = self.db.pool().acquire().await.map_err(StoreError::from)?;
            let known: HashMap<String, i64> = store::known_posts(&mut conn, id)
                .await?
                .into_iter()
                .map(|(remote, incident)| (listener.key(&remote), incident))
                .collect();
            (known, store::open_incidents(&mut conn).await?)
        };
        let keys: HashSet<String> = known.keys().cloned().collect();
        let mut cursor = source.as_ref().and_then(|s| s.cursor.clone());
        let mut failures = source.as_ref().map_or(0, |s| s.failures);
        let poll_every = self.env.config.inbox.poll_every;
        let mut next = now + to_chrono(poll_every);
        let mut error = None;
        let mut received = 0;
        for _ in 0..PAGES_PER_PASS {
            match listener.poll(cursor.as_deref(), &keys, now).await {
                Ok(page) => {
                    failures = 0;
                    let mut unit = Unit::begin(&self.db, Some(self.changes.clone())).await?;
                    received += commands::inbox::receive(
                        &self.env,
                        unit.tx(),
                        id,
                        &page.posts,
                        &known,
                        &open,
                        now,
                    )
                    .await?;
                    store::save_cursor(unit.tx(), id, page.cursor.as_deref(), now).await?;
                    unit.commit().await?;
                    cursor = page.cursor;
                    if let Some(until) = page.rate.hold_until(now) {
                        tracing::info!(channel = id, until = %until, "inbox: rate limit nearly spent; polling waits for its reset");
                        next = next.max(until);
                        break;
                    }
                    if !page.more {
                        break;
                    }
                }
                Err(e) => {
                    failures += 1;
                    let (reason, wait) = match e {
                        SendError::Retryable {
                            reason,
                            retry_after,
                        } => (reason, retry_after),
                        SendError::Permanent { reason } => (reason, None),
                    };
                    let backoff =
                        failure_backoff(poll_every, u32::try_from(failures).unwrap_or(16));
                    let wait = wait.map_or(backoff, |w| w.max(Duration::from_secs(1)));
                    tracing::warn!(channel = id, error = %reason, retry_in = %humantime::format_duration(wait), "inbox: polling failed");
                    next = now + to_chrono(wait);
                    error = Some(reason);
                    break;
                }
            }
        }
        let mut conn = self.db.write_conn().await?;
        store::save_poll(&mut conn, id, next, failures, error.as_deref(), now).await?;
        Ok(Some(received))
    }

    /// Runs the poller until `stop` is cancelled: a pass every second (each channel is asked
    /// only when its own time has come), a failed pass retried with backoff.
    pub async fn run(self, stop: CancellationToken, loops: Arc<Loops>) {
        const NAME: &str = "inbox";
        loops.started(NAME);
        let mut backoff = RestartBackoff::default();
        loop {
            let pause = match loops.pass(NAME, self.run_once()).await {
                Ok(_) => {
                    backoff.reset();
                    Duration::from_secs(1)
                }
                Err(_) => backoff.failed(),
            };
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(pause) => {}
            }
        }
        loops.stopped(NAME);
    }
}

/// Reads a network's rate-limit headers (`<prefix>limit`, `<prefix>remaining`,
/// `<prefix>reset`), the reset written as `reset` says.
pub fn rate_of(
    headers: &reqwest::header::HeaderMap,
    prefix: &str,
    reset: crate::channels::Reset,
    now: DateTime<Utc>,
) -> Rate {
    let get = |name: &str| {
        headers
            .get(format!("{prefix}{name}"))
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_string())
    };
    let num = |name: &str| get(name).and_then(|v| v.parse::<u64>().ok());
    let reset = get("reset").and_then(|v| match reset {
        crate::channels::Reset::EpochSeconds => DateTime::from_timestamp(v.parse().ok()?, 0),
        crate::channels::Reset::Iso8601 => DateTime::parse_from_rfc3339(&v)
            .ok()
            .map(|t| t.with_timezone(&Utc)),
        crate::channels::Reset::SecondsFromNow => {
            let s: f64 = v.parse().ok()?;
            (s.is_finite() && s >= 0.0).then(|| now + to_chrono(Duration::from_secs_f64(s)))
        }
    });
    Rate {
        limit: num("limit"),
        remaining: num("remaining"),
        reset,
    }
}
