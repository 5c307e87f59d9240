//! The scheduler keeps the promises public updates make. Each tick it asks the domain what every
//! open incident is owed now ([`crate::domain::schedule::due_action`]) and carries that out
//! through the one write path ([`crate::commands::scheduled`]). Each action happens exactly once
//! per (incident, action, due time), however many instances tick at the same moment.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::commands::{self, maintenance, CommandError, Env};
use crate::domain::maintenance::due;
use crate::domain::schedule::due_action;
use crate::domain::to_chrono;
use crate::store::{idempotency, incidents, retention, Db, StoreError};
use crate::supervise::{catch_panic, Loops, RestartBackoff};

pub struct Scheduler {
    db: Db,
    clock: Arc<dyn Clock>,
    env: Env,
    changes: watch::Sender<u64>,
    last_purge: Mutex<Option<DateTime<Utc>>>,
    last_sweep: Mutex<Option<DateTime<Utc>>>,
}

impl Scheduler {
    pub fn new(db: Db, clock: Arc<dyn Clock>, env: Env, changes: watch::Sender<u64>) -> Self {
        Self {
            db,
            clock,
            env,
            changes,
            last_purge: Mutex::new(None),
            last_sweep: Mutex::new(None),
        }
    }

    /// Does whatever is due now. Returns how many actions this instance carried out.
    pub async fn tick(&self) -> Result<usize, CommandError> {
        let now = self.clock.now();
        let open = {
            let mut conn = self
                .db
                .pool()
                .acquire()
                .await
                .map_err(crate::store::StoreError::from)?;
            incidents::open(&mut conn).await?
        };
        let remind_before = self.env.config.ops.remind_before;
        let mut done = 0;
        for incident in open {
            let Some(action) = incident
                .promises()
                .and_then(|p| due_action(&p, now, remind_before))
            else {
                continue;
            };
            let mut tx = self.db.begin_write().await?;
            // A panic in one incident's action fails that action (its transaction rolls back)
            // and the tick goes on with the others.
            let result = catch_panic(commands::scheduled(
                &self.env,
                &mut tx,
                incident.id,
                action,
                now,
            ))
            .await;
            let result = match result {
                Ok(r) => r,
                Err(panic) => {
                    tracing::error!(incident.id = incident.id, panic = %panic, "scheduled action panicked; will retry next tick");
                    continue;
                }
            };
            match result {
                Ok(true) => {
                    tx.commit().await?;
                    let (name, due_at) = action.key();
                    tracing::info!(incident.id = incident.id, action = name, due_at = %due_at, "scheduled action done");
                    self.changes.send_modify(|v| *v = v.wrapping_add(1));
                    done += 1;
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(incident.id = incident.id, error = %e, "scheduled action failed; will retry next tick");
                }
            }
        }
        done += self.maintenance(now).await?;
        self.housekeeping(now).await;
        self.retention(now).await;
        Ok(done)
    }

    /// Scheduled maintenance: materialises recurring windows from config (each announced once,
    /// unique on (config entry, start)), then sends advance notices and starts windows, each
    /// exactly once per (window, action, due time). Started windows are open incidents above.
    async fn maintenance(&self, now: DateTime<Utc>) -> Result<usize, CommandError> {
        let cfg = &self.env.config.maintenance;
        let mut done = 0;
        for entry in &cfg.recurring {
            let starts = match maintenance::recurring_starts(entry, now, cfg.horizon) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(recurring = %entry.id, error = %e, "recurring window skipped");
                    continue;
                }
            };
            let (Some(first), Some(last)) = (starts.first(), starts.last()) else {
                continue;
            };
            let key = format!("config:{}", entry.id);
            let existing = {
                let mut conn = self.db.pool().acquire().await.map_err(StoreError::from)?;
                incidents::recurrence_starts(&mut conn, &key, *first, *last).await?
            };
            for start in starts.iter().copied().filter(|s| !existing.contains(s)) {
                let mut tx = self.db.begin_write().await?;
                let window = maintenance::recurring_window(entry, start);
                match maintenance::schedule_window(
                    &self.env,
                    &mut tx,
                    &commands::Actor::scheduler(),
                    window,
                    Some(&key),
                    now,
                )
                .await
                {
                    Ok(Some(id)) => {
                        tx.commit().await?;
                        tracing::info!(incident.id = id, recurring = %entry.id, start = %start, "recurring window scheduled");
                        self.changes.send_modify(|v| *v = v.wrapping_add(1));
                        done += 1;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::error!(recurring = %entry.id, error = %e, "recurring window failed; will retry next tick");
                    }
                }
            }
        }
        let upcoming = {
            let mut conn = self.db.pool().acquire().await.map_err(StoreError::from)?;
            incidents::windows(&mut conn, incidents::WindowFilter::Upcoming, 10_000).await?
        };
        for w in upcoming {
            let Some(action) =
                maintenance::window_state(&w).and_then(|s| due(&s, &cfg.notices, now))
            else {
                continue;
            };
            let mut tx = self.db.begin_write().await?;
            match maintenance::scheduled_notice(&self.env, &mut tx, w.id, action, now).await {
                Ok(true) => {
                    tx.commit().await?;
                    let (name, due_at) = action.key();
                    tracing::info!(incident.id = w.id, action = name, due_at = %due_at, "maintenance action done");
                    self.changes.send_modify(|v| *v = v.wrapping_add(1));
                    done += 1;
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(incident.id = w.id, error = %e, "maintenance action failed; will retry next tick");
                }
            }
        }
        Ok(done)
    }

    /// Forgets idempotency keys older than a day, once an hour.
    async fn housekeeping(&self, now: DateTime<Utc>) {
        {
            let mut last = self.last_purge.lock().expect("purge lock");
            if last.is_some_and(|t| now - t < chrono::Duration::hours(1)) {
                return;
            }
            *last = Some(now);
        }
        if let Ok(mut conn) = self.db.write_conn().await {
            if let Err(e) = idempotency::purge(&mut conn, now - chrono::Duration::hours(24)).await {
                tracing::warn!(error = %e, "purging old idempotency keys failed");
            }
        }
    }

    /// One supervised tick: a panic or an error is recorded in `loops` (for `/readyz`) under
    /// `scheduler` instead of ending the loop.
    pub async fn supervised_tick(&self, loops: &Loops) -> Result<usize, String> {
        loops.pass("scheduler", self.tick()).await
    }

    /// Deletes finished history past `retention`, every `retention.every`, in bounded batches.
    async fn retention(&self, now: DateTime<Utc>) {
        let r = &self.env.config.retention;
        {
            let mut last = self.last_sweep.lock().expect("sweep lock");
            if last.is_some_and(|t| now - t < to_chrono(r.every)) {
                return;
            }
            *last = Some(now);
        }
        let cutoffs = retention::Cutoffs {
            deliveries: now - to_chrono(r.deliveries),
            audit: now - to_chrono(r.audit),
            sessions: now - to_chrono(r.sessions),
        };
        match retention::sweep(&self.db, &cutoffs, i64::from(r.batch)).await {
            Ok(swept) if swept != retention::Swept::default() => {
                tracing::info!(?swept, "deleted history past its retention")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "retention sweep failed; will retry"),
        }
    }

    /// Ticks every `scheduler.tick` until `stop` is cancelled. A failed tick is tried again
    /// after a growing pause (never less than a tick).
    pub async fn run(self, stop: CancellationToken, loops: Arc<Loops>) {
        let mut every = tokio::time::interval(self.env.config.scheduler.tick);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut backoff = RestartBackoff::default();
        loops.started("scheduler");
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = every.tick() => {
                    if self.supervised_tick(&loops).await.is_ok() {
                        backoff.reset();
                    } else {
                        tokio::select! {
                            _ = stop.cancelled() => break,
                            _ = tokio::time::sleep(backoff.failed()) => {}
                        }
                    }
                }
            }
        }
        loops.stopped("scheduler");
    }
}
