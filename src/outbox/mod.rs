//! Delivery workers. Each channel has its own lane (its own loop, concurrency and rate limit),
//! so a channel that is down never delays the others. A worker claims due deliveries with a
//! lease, sends them, and records the outcome on the row: delivered, retry later (exponential
//! backoff with jitter, or the remote's `Retry-After`), or dead. A worker killed mid-send loses
//! nothing: its lease expires and another worker takes the delivery over.
//!
//! A rate-limited lane takes its permits before it claims (see [`limit`]), so no lease runs out
//! while a worker waits for its turn. Retryable failures are retried until the delivery is
//! `outbox.retry_for` old (a day by default), so an outage of hours loses nothing; a panic in a
//! channel is recorded on the delivery as a retryable failure and the lane goes on.
//!
//! Most deliveries carry an incident's [`Message`]; a delivery for the `subscriber` audience
//! carries a [`Confirmation`] (a subscriber's double opt-in mail, of no incident), which the
//! lane hands to [`Channel::confirm`].

pub mod limit;

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use chrono::{DateTime, Utc};
use rand::RngCore;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::channels::{Channel, Confirmation, DeliveryContext, Message, SendError};
use crate::clock::Clock;
use crate::config::Config;
use crate::domain::{to_chrono, Audience};
use crate::store::{deliveries, from_ms, Db, StoreError};
use crate::supervise::{catch_panic, Loops, RestartBackoff};
use limit::Limiter;

struct Lane {
    channel: Arc<dyn Channel>,
    limiter: Option<Limiter>,
    concurrency: i64,
    /// An optional cap on attempts (`limits.max_attempts` or `outbox.max_attempts`).
    max_attempts: Option<i64>,
    timeout: Duration,
    /// One delivery may outlast the lease (an email fan-out): the worker renews the lease while
    /// it runs instead of bounding it by `timeout` (each send inside has its own).
    renews_lease: bool,
}

/// The delivery workers of one instance.
pub struct Outbox {
    db: Db,
    clock: Arc<dyn Clock>,
    lanes: Vec<Lane>,
    lease: Duration,
    poll_interval: Duration,
    backoff: ExponentialBuilder,
    instance: String,
    metrics: Arc<crate::metrics::Metrics>,
    retry_for: chrono::Duration,
    loops: Arc<Loops>,
}

/// What one pass over a lane did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassReport {
    pub claimed: usize,
    pub delivered: usize,
    pub retrying: usize,
    pub dead: usize,
}

impl PassReport {
    fn add(&mut self, o: PassReport) {
        self.claimed += o.claimed;
        self.delivered += o.delivered;
        self.retrying += o.retrying;
        self.dead += o.dead;
    }
}

/// What a delivery carries, told by its audience: an incident's message (for the public or
/// the team), or one subscriber's confirmation mail.
enum Payload {
    Message(Box<Message>),
    Confirmation(Confirmation),
}

enum Outcome {
    Delivered,
    Retrying,
    Dead,
}

impl Outbox {
    pub fn new(
        db: Db,
        clock: Arc<dyn Clock>,
        config: &Config,
        channels: &BTreeMap<String, Arc<dyn Channel>>,
        instance: &str,
        metrics: Arc<crate::metrics::Metrics>,
        loops: Arc<Loops>,
    ) -> Self {
        let lanes = config
            .channels
            .iter()
            .filter_map(|(id, cfg)| {
                let channel = channels.get(id)?.clone();
                let l = cfg.limits();
                let limiter = l
                    .per_minute
                    .and_then(NonZeroU32::new)
                    .map(|n| Limiter::per_minute(n, clock.clone()));
                Some(Lane {
                    channel,
                    limiter,
                    concurrency: i64::from(l.concurrency),
                    max_attempts: l.max_attempts.or(config.outbox.max_attempts).map(i64::from),
                    timeout: l.timeout,
                    renews_lease: cfg.long_running(),
                })
            })
            .collect();
        let backoff = ExponentialBuilder::default()
            .with_min_delay(config.outbox.backoff_min)
            .with_max_delay(config.outbox.backoff_max)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times();
        Self {
            db,
            clock,
            lanes,
            lease: config.outbox.lease,
            poll_interval: config.outbox.poll_interval,
            backoff,
            instance: instance.to_string(),
            metrics,
            retry_for: to_chrono(config.outbox.retry_for),
            loops,
        }
    }

    /// The wait before attempt `failed + 1`, after `failed` failures: doubling from
    /// `backoff_min`, capped at `backoff_max`, with jitter so retries do not stampede.
    pub fn backoff_after(&self, failed: i64) -> Duration {
        let n = usize::try_from(failed.max(1) - 1).unwrap_or(0).min(64);
        self.backoff
            .build()
            .nth(n)
            .unwrap_or(Duration::from_secs(60))
    }

    /// One pass over every lane at the clock's current time, lanes side by side.
    pub async fn run_once(&self) -> Result<PassReport, StoreError> {
        let results = futures::future::join_all(self.lanes.iter().map(|l| self.run_lane(l))).await;
        let mut total = PassReport::default();
        for r in results {
            total.add(r?);
        }
        Ok(total)
    }

    /// Passes until nothing more is due now (tests and one-shot runs).
    pub async fn drain(&self) -> Result<PassReport, StoreError> {
        let mut total = PassReport::default();
        loop {
            let r = self.run_once().await?;
            if r.claimed == 0 {
                return Ok(total);
            }
            total.add(r);
        }
    }

    async fn run_lane(&self, lane: &Lane) -> Result<PassReport, StoreError> {
        let mut token = [0u8; 8];
        rand::thread_rng().fill_bytes(&mut token);
        let lease_owner = format!("{}:{}", self.instance, hex::encode(token));
        let now = self.clock.now();
        let limit = match &lane.limiter {
            None => lane.concurrency,
            Some(limiter) => {
                // Permits first, then the claim: a lease never waits on the limit. Only as many
                // permits as there is work, so an idle lane does not spend its rate on nothing.
                let due = {
                    let mut conn = self.db.pool().acquire().await?;
                    deliveries::count_due(&mut conn, lane.channel.id(), now, lane.concurrency)
                        .await?
                };
                limiter.take(due)
            }
        };
        if limit == 0 {
            return Ok(PassReport::default());
        }
        let claimed = {
            let mut conn = self.db.write_conn().await?;
            deliveries::claim(
                &mut conn,
                self.db.backend(),
                lane.channel.id(),
                &lease_owner,
                now,
                now + to_chrono(self.lease),
                limit,
            )
            .await?
        };
        let mut report = PassReport {
            claimed: claimed.len(),
            ..Default::default()
        };
        let outcomes = futures::future::join_all(
            claimed
                .into_iter()
                .map(|c| self.deliver_one(lane, c, &lease_owner)),
        )
        .await;
        for o in outcomes {
            match o? {
                Outcome::Delivered => report.delivered += 1,
                Outcome::Retrying => report.retrying += 1,
                Outcome::Dead => report.dead += 1,
            }
        }
        Ok(report)
    }

    /// Sends one claimed delivery and records the outcome, inside a span naming it (its kind is
    /// recorded once the payload is read). `instrument` on an async fn enters the span only
    /// while the future is polled: a guard held across `.await` would label other deliveries'
    /// log lines with this one.
    #[tracing::instrument(
        name = "deliver",
        skip_all,
        fields(
            delivery.id = c.id,
            incident.id = c.incident_id,
            channel = lane.channel.id(),
            attempt = c.attempts,
            kind = tracing::field::Empty,
        )
    )]
    async fn deliver_one(
        &self,
        lane: &Lane,
        c: deliveries::Claimed,
        owner: &str,
    ) -> Result<Outcome, StoreError> {
        self.attempt(lane, c, owner).await
    }

    async fn attempt(
        &self,
        lane: &Lane,
        c: deliveries::Claimed,
        owner: &str,
    ) -> Result<Outcome, StoreError> {
        let channel = lane.channel.id();
        let payload = if c.audience == Audience::Subscriber.as_str() {
            serde_json::from_str(&c.payload).map(Payload::Confirmation)
        } else {
            serde_json::from_str(&c.payload).map(|m| Payload::Message(Box::new(m)))
        };
        let payload = match payload {
            Ok(p) => {
                let kind = match &p {
                    Payload::Message(m) => format!("{:?}", m.kind),
                    Payload::Confirmation(_) => "Confirmation".to_string(),
                };
                tracing::Span::current().record("kind", tracing::field::display(kind));
                p
            }
            Err(e) => {
                tracing::error!(error = %e, "delivery payload unreadable; parking it as dead");
                let mut conn = self.db.write_conn().await?;
                deliveries::mark_dead(&mut conn, c.id, owner, &format!("payload unreadable: {e}"))
                    .await?;
                self.metrics.delivery(channel, "dead");
                return Ok(Outcome::Dead);
            }
        };
        if let Some(max) = lane.max_attempts.filter(|max| c.attempts > *max) {
            // Earlier attempts never reported back (their workers died mid-send).
            let why = format!("gave up: {max} attempts did not finish");
            let mut conn = self.db.write_conn().await?;
            deliveries::mark_dead(&mut conn, c.id, owner, &why).await?;
            tracing::warn!("{why}");
            self.metrics.delivery(channel, "dead");
            return Ok(Outcome::Dead);
        }
        let (thread_root, thread_parent) = match c.incident_id {
            Some(incident_id) => {
                let mut conn = self.db.pool().acquire().await?;
                (
                    deliveries::thread_root(&mut conn, incident_id, channel).await?,
                    deliveries::thread_parent(&mut conn, incident_id, channel).await?,
                )
            }
            None => (None, None),
        };
        // A correction edits, where the network can, the corrected update's own post here.
        let corrects = match &payload {
            Payload::Message(m) => match &m.correction {
                Some(fix) => {
                    let mut conn = self.db.pool().acquire().await?;
                    deliveries::remote_id_of_update(&mut conn, fix.update_id, channel).await?
                }
                None => None,
            },
            Payload::Confirmation(_) => None,
        };
        let ctx = DeliveryContext {
            corrects,
            delivery_id: c.id,
            attempt: c.attempts,
            idempotency_key: format!("candor-delivery-{}", c.id),
            thread_root,
            thread_parent,
            now: self.clock.now(),
        };
        // A panic in a channel is this delivery's failure, not the lane's end.
        let send = async {
            let sending = match &payload {
                Payload::Message(msg) => lane.channel.deliver(msg, &ctx),
                Payload::Confirmation(confirmation) => lane.channel.confirm(confirmation, &ctx),
            };
            catch_panic(sending).await.unwrap_or_else(|panic| {
                tracing::error!(panic = %panic, "the channel panicked while sending");
                Err(SendError::retryable(format!(
                    "the channel panicked: {panic}"
                )))
            })
        };
        let result = if lane.renews_lease {
            self.renewing_lease(c.id, owner, send).await?
        } else {
            match tokio::time::timeout(lane.timeout, send).await {
                Ok(r) => r,
                Err(_) => Err(SendError::retryable(format!(
                    "timed out after {}",
                    humantime::format_duration(lane.timeout)
                ))),
            }
        };
        let now = self.clock.now();
        let retrying_for = now - from_ms(c.retry_since);
        let may_retry =
            retrying_for < self.retry_for && lane.max_attempts.is_none_or(|max| c.attempts < max);
        let mut conn = self.db.write_conn().await?;
        let (outcome, kept) = match result {
            Ok(sent) => {
                tracing::info!(remote.id = sent.remote_id.as_deref(), "delivered");
                let kept = deliveries::mark_delivered(
                    &mut conn,
                    c.id,
                    owner,
                    sent.remote_id.as_deref(),
                    sent.remote_url.as_deref(),
                    now,
                )
                .await?;
                (Outcome::Delivered, kept)
            }
            Err(SendError::Retryable {
                reason,
                retry_after,
            }) if may_retry => {
                let wait = retry_after.unwrap_or_else(|| self.backoff_after(c.attempts));
                let at: DateTime<Utc> = now + to_chrono(wait);
                tracing::warn!(error = %reason, retry_in = %humantime::format_duration(wait), "delivery failed; will retry");
                (
                    Outcome::Retrying,
                    deliveries::mark_retry(&mut conn, c.id, owner, at, &reason).await?,
                )
            }
            Err(SendError::Retryable { reason, .. }) => {
                let why = format!(
                    "{reason} (gave up after {} attempts over {})",
                    c.attempts,
                    humantime::format_duration(retrying_for.to_std().unwrap_or_default())
                );
                tracing::error!(error = %why, "delivery is dead");
                (
                    Outcome::Dead,
                    deliveries::mark_dead(&mut conn, c.id, owner, &why).await?,
                )
            }
            Err(SendError::Permanent { reason }) => {
                tracing::error!(error = %reason, "delivery refused permanently; it is dead");
                (
                    Outcome::Dead,
                    deliveries::mark_dead(&mut conn, c.id, owner, &reason).await?,
                )
            }
        };
        let label = match outcome {
            Outcome::Delivered => "delivered",
            Outcome::Retrying => "retry",
            Outcome::Dead => "dead",
        };
        self.metrics.delivery(channel, label);
        if !kept {
            tracing::warn!(
                "lease was lost before the outcome was recorded; another worker owns this delivery"
            );
        }
        Ok(outcome)
    }

    /// Runs `send` while renewing the lease of delivery `id` every third of the lease. If the
    /// lease is lost (this worker was too slow to renew and another took the delivery over),
    /// the send is dropped: the other worker carries on from what was recorded.
    async fn renewing_lease<F>(
        &self,
        id: i64,
        owner: &str,
        send: F,
    ) -> Result<Result<crate::channels::Sent, SendError>, StoreError>
    where
        F: std::future::Future<Output = Result<crate::channels::Sent, SendError>>,
    {
        // The renewal runs beside the send, never in place of it: the send may hold this
        // process's SQLite write turn (recording outcomes) while the renewal waits for it.
        let renew = async {
            let mut every = tokio::time::interval((self.lease / 3).max(Duration::from_millis(10)));
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            every.tick().await;
            loop {
                every.tick().await;
                let until = self.clock.now() + to_chrono(self.lease);
                let mut conn = self.db.write_conn().await?;
                if !deliveries::renew_lease(&mut conn, id, owner, until).await? {
                    return Ok::<(), StoreError>(());
                }
            }
        };
        tokio::select! {
            r = send => Ok(r),
            lost = renew => {
                lost?;
                tracing::warn!("lease lost during a long delivery; another worker carries on");
                Ok(Err(SendError::retryable("lease lost to another worker")))
            }
        }
    }

    /// Runs every lane in its own task until `stop` is cancelled. Lanes wake when `changes`
    /// moves (a commit in this instance) or every `poll_interval` (other instances' work).
    pub fn spawn(
        self: &Arc<Self>,
        changes: watch::Receiver<u64>,
        stop: CancellationToken,
    ) -> Vec<JoinHandle<()>> {
        (0..self.lanes.len())
            .map(|i| {
                let me = self.clone();
                let mut changes = changes.clone();
                let stop = stop.clone();
                tokio::spawn(async move {
                    let lane = &me.lanes[i];
                    let name = format!("outbox:{}", lane.channel.id());
                    me.loops.started(&name);
                    let mut backoff = RestartBackoff::default();
                    loop {
                        // A failed pass (the database refused, or a panic outside a channel)
                        // is tried again after a growing pause; the lane never ends early.
                        match me.loops.pass(&name, me.run_lane(lane)).await {
                            Ok(r) if r.claimed > 0 => {
                                backoff.reset();
                                if stop.is_cancelled() {
                                    break;
                                }
                                continue;
                            }
                            Ok(_) => backoff.reset(),
                            Err(_) => {
                                tokio::select! {
                                    _ = stop.cancelled() => break,
                                    _ = tokio::time::sleep(backoff.failed()) => continue,
                                }
                            }
                        }
                        tokio::select! {
                            _ = stop.cancelled() => break,
                            r = changes.changed() => if r.is_err() { tokio::time::sleep(me.poll_interval).await },
                            _ = tokio::time::sleep(me.poll_interval) => {},
                        }
                    }
                    me.loops.stopped(&name);
                })
            })
            .collect()
    }

    /// Hands back every delivery this instance still holds, so another worker can send it at
    /// once rather than after the lease (graceful shutdown).
    pub async fn release(&self) -> Result<u64, StoreError> {
        let mut conn = self.db.write_conn().await?;
        deliveries::release_all(&mut conn, &format!("{}:", self.instance), self.clock.now()).await
    }
}
