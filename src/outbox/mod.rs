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
//! lane hands to [`Channel::confirm`]; one for the `reply` audience carries a [`Reply`] (an
//! answer from the inbox, in a customer's thread), handed to [`Channel::reply`].

mod lease;
pub mod limit;

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder, Retryable};
use chrono::{DateTime, Utc};
use rand::RngCore;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::channels::{Channel, Confirmation, DeliveryContext, Message, Reply, SendError};
use crate::clock::Clock;
use crate::config::Config;
use crate::domain::{to_chrono, Audience};
use crate::store::turn::Priority;
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
    /// A reply in a customer's thread (the inbox).
    Reply(Reply),
    /// A publish of the public site to a mirror.
    Publish(crate::mirror::Publish),
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
                    concurrency: i64::from(cfg.concurrency()),
                    max_attempts: l.max_attempts.or(config.outbox.max_attempts).map(i64::from),
                    timeout: l.timeout,
                    renews_lease: cfg.long_running(),
                })
            })
            .collect::<Vec<_>>();
        // Each mirror is a lane of its own: one publish at a time (each writes what changed
        // since the last), renewing its lease while a full publish runs.
        let mut lanes = lanes;
        lanes.extend(config.mirrors.targets.iter().filter_map(|t| {
            Some(Lane {
                channel: channels.get(&t.channel())?.clone(),
                limiter: None,
                concurrency: 1,
                max_attempts: config.outbox.max_attempts.map(i64::from),
                timeout: Duration::from_secs(600),
                renews_lease: true,
            })
        }));
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

    /// Passes over the lanes whose channel `only` accepts until nothing more is due there
    /// (`candor mirror sync`).
    pub async fn drain_only(&self, only: impl Fn(&str) -> bool) -> Result<PassReport, StoreError> {
        let mut total = PassReport::default();
        loop {
            let lanes = self.lanes.iter().filter(|l| only(l.channel.id()));
            let results = futures::future::join_all(lanes.map(|l| self.run_lane(l))).await;
            let mut pass = PassReport::default();
            for r in results {
                pass.add(r?);
            }
            if pass.claimed == 0 {
                return Ok(total);
            }
            total.add(pass);
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
                    let mut conn = self.db.read_conn_as(Priority::Urgent).await?;
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
            let mut conn = self.db.write_conn_as(Priority::Urgent).await?;
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
        if claimed.is_empty() {
            return Ok(report);
        }
        // Sends run side by side; their outcomes are recorded as they come, in batches: while
        // one batch commits, the next gathers (a group commit), so a pass of many deliveries
        // costs a few writes, not one per delivery.
        let (done, mut outcomes) = tokio::sync::mpsc::unbounded_channel();
        let sends = futures::future::join_all(claimed.into_iter().map(|c| {
            let done = done.clone();
            let owner = &lease_owner;
            async move {
                let id = c.id;
                let outcome = self.deliver_one(lane, c, owner).await;
                // The recorder outlives every send; a failed send here cannot happen.
                let _ = done.send((id, outcome));
            }
        }));
        drop(done);
        let record = async {
            let mut batch = Vec::new();
            let mut failed = None;
            while outcomes.recv_many(&mut batch, 1024).await > 0 {
                let rows: Vec<(i64, deliveries::Outcome)> = std::mem::take(&mut batch);
                match self.record(lane, &lease_owner, &rows).await {
                    Ok(tally) => report.add(tally),
                    Err(e) => failed = Some(e),
                }
            }
            failed.map_or(Ok(()), Err)
        };
        let (_, recorded) = tokio::join!(sends, record);
        recorded?;
        Ok(report)
    }

    /// Records one batch of outcomes in one transaction, retried briefly if the database
    /// refuses (an outcome not recorded would be sent again once its lease runs out).
    async fn record(
        &self,
        lane: &Lane,
        owner: &str,
        rows: &[(i64, deliveries::Outcome)],
    ) -> Result<PassReport, StoreError> {
        let write = || async {
            let mut tx = self.db.begin_write_as(Priority::Urgent).await?;
            let kept = deliveries::record(&mut tx, owner, rows).await?;
            tx.commit().await?;
            Ok::<_, StoreError>(kept)
        };
        let kept = write
            .retry(
                ExponentialBuilder::default()
                    .with_min_delay(Duration::from_millis(50))
                    .with_max_delay(Duration::from_secs(2))
                    .with_max_times(5),
            )
            .notify(|e, wait| {
                tracing::warn!(error = %e, retry_in = ?wait, "cannot record delivery outcomes yet; retrying");
            })
            .await?;
        let channel = lane.channel.id();
        let mut report = PassReport::default();
        for ((id, outcome), kept) in rows.iter().zip(kept) {
            let label = match outcome {
                deliveries::Outcome::Delivered { .. } => {
                    report.delivered += 1;
                    "delivered"
                }
                deliveries::Outcome::Retry { .. } => {
                    report.retrying += 1;
                    "retry"
                }
                deliveries::Outcome::Dead { .. } => {
                    report.dead += 1;
                    "dead"
                }
            };
            self.metrics.delivery(channel, label);
            if !kept {
                tracing::warn!(
                    delivery.id = id,
                    channel,
                    "lease was lost before the outcome was recorded; another worker owns this delivery"
                );
            }
        }
        Ok(report)
    }

    /// Sends one claimed delivery and tells what to record, inside a span naming it (its kind
    /// is recorded once the payload is read). `instrument` on an async fn enters the span only
    /// while the future is polled: a guard held across `.await` would label other deliveries'
    /// log lines with this one. A delivery whose thread cannot be read is retried later.
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
    ) -> deliveries::Outcome {
        let retry_since = c.retry_since;
        let attempts = c.attempts;
        match self.attempt(lane, c, owner).await {
            Ok(o) => o,
            Err(e) => self.failed(
                lane,
                attempts,
                retry_since,
                SendError::retryable(format!("the database could not be read: {e}")),
            ),
        }
    }

    async fn attempt(
        &self,
        lane: &Lane,
        c: deliveries::Claimed,
        owner: &str,
    ) -> Result<deliveries::Outcome, StoreError> {
        let channel = lane.channel.id();
        let payload = if c.audience == Audience::Subscriber.as_str() {
            serde_json::from_str(&c.payload).map(Payload::Confirmation)
        } else if c.audience == Audience::Reply.as_str() {
            serde_json::from_str(&c.payload).map(Payload::Reply)
        } else if c.audience == Audience::Mirror.as_str() {
            serde_json::from_str(&c.payload).map(Payload::Publish)
        } else {
            serde_json::from_str(&c.payload).map(|m| Payload::Message(Box::new(m)))
        };
        let payload = match payload {
            Ok(p) => {
                let kind = match &p {
                    Payload::Message(m) => format!("{:?}", m.kind),
                    Payload::Confirmation(_) => "Confirmation".to_string(),
                    Payload::Reply(_) => "Reply".to_string(),
                    Payload::Publish(p) if p.full => "PublishFull".to_string(),
                    Payload::Publish(_) => "Publish".to_string(),
                };
                tracing::Span::current().record("kind", tracing::field::display(kind));
                p
            }
            Err(e) => {
                tracing::error!(error = %e, "delivery payload unreadable; parking it as dead");
                return Ok(deliveries::Outcome::Dead {
                    error: format!("payload unreadable: {e}"),
                });
            }
        };
        if let Some(max) = lane.max_attempts.filter(|max| c.attempts > *max) {
            // Earlier attempts never reported back (their workers died mid-send).
            let why = format!("gave up: {max} attempts did not finish");
            tracing::warn!("{why}");
            return Ok(deliveries::Outcome::Dead { error: why });
        }
        let (thread_root, thread_parent) = match c.incident_id {
            Some(incident_id) if lane.channel.threads() => {
                let mut conn = self.db.read_conn_as(Priority::Urgent).await?;
                (
                    deliveries::thread_root(&mut conn, incident_id, channel).await?,
                    deliveries::thread_parent(&mut conn, incident_id, channel).await?,
                )
            }
            _ => (None, None),
        };
        // A correction edits, where the network can, the corrected update's own post here.
        let corrects = match &payload {
            Payload::Message(m) => match &m.correction {
                Some(fix) => {
                    let mut conn = self.db.read_conn_as(Priority::Urgent).await?;
                    deliveries::remote_id_of_update(&mut conn, fix.update_id, channel).await?
                }
                None => None,
            },
            Payload::Confirmation(_) | Payload::Reply(_) | Payload::Publish(_) => None,
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
                Payload::Reply(reply) => lane.channel.reply(reply, &ctx),
                Payload::Publish(p) => lane.channel.publish(p, &ctx),
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
        Ok(match result {
            Ok(sent) => {
                tracing::info!(remote.id = sent.remote_id.as_deref(), "delivered");
                deliveries::Outcome::Delivered {
                    remote_id: sent.remote_id,
                    remote_url: sent.remote_url,
                    at: self.clock.now(),
                }
            }
            Err(e) => self.failed(lane, c.attempts, c.retry_since, e),
        })
    }

    /// What a failed attempt leaves: a retry after the backoff (or the remote's
    /// `Retry-After`) while the delivery may still be retried, else a dead letter.
    fn failed(
        &self,
        lane: &Lane,
        attempts: i64,
        retry_since: i64,
        error: SendError,
    ) -> deliveries::Outcome {
        let now = self.clock.now();
        let retrying_for = now - from_ms(retry_since);
        let may_retry =
            retrying_for < self.retry_for && lane.max_attempts.is_none_or(|max| attempts < max);
        match error {
            SendError::Retryable {
                reason,
                retry_after,
            } if may_retry => {
                let wait = retry_after.unwrap_or_else(|| self.backoff_after(attempts));
                let at: DateTime<Utc> = now + to_chrono(wait);
                tracing::warn!(error = %reason, retry_in = %humantime::format_duration(wait), "delivery failed; will retry");
                deliveries::Outcome::Retry { at, error: reason }
            }
            SendError::Retryable { reason, .. } => {
                let why = format!(
                    "{reason} (gave up after {attempts} attempts over {})",
                    humantime::format_duration(retrying_for.to_std().unwrap_or_default())
                );
                tracing::error!(error = %why, "delivery is dead");
                deliveries::Outcome::Dead { error: why }
            }
            SendError::Permanent { reason } => {
                tracing::error!(error = %reason, "delivery refused permanently; it is dead");
                deliveries::Outcome::Dead { error: reason }
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
