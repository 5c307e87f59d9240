//! The watcher: queues a publish on each mirror when the public change counter moves past what
//! the mirror holds, once a minute (the heartbeat, and documents that move with the clock), and
//! a full one at start. It only queues; the outbox publishes.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::store::{changes, mirrors, StoreError};

/// How often the minute's publish (heartbeat included) is queued.
const BEAT: Duration = Duration::from_secs(60);
/// How often the counter is read when nothing wakes the watcher (other instances' changes on
/// SQLite; on PostgreSQL their NOTIFY wakes it at once).
const POLL: Duration = Duration::from_secs(1);

impl App {
    /// Queues publishes until `stop` (see the module's comment).
    pub async fn keep_mirrors(self, stop: CancellationToken) {
        let mut changes = self.changes.subscribe();
        self.loops.started("mirrors");
        let mut started = false;
        let mut beat = tokio::time::interval(BEAT);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let minute = tokio::select! {
                _ = stop.cancelled() => break,
                _ = beat.tick() => true,
                _ = changes.changed() => false,
                _ = tokio::time::sleep(POLL) => false,
            };
            let pass = async {
                if !started {
                    self.queue_publish(true).await?;
                    started = true;
                }
                if minute {
                    self.queue_publish(false).await?;
                }
                self.queue_behind().await
            };
            let _ = self.loops.pass("mirrors", pass).await;
        }
        self.loops.stopped("mirrors");
    }

    /// Queues a publish on every mirror (one already waiting carries it).
    pub async fn queue_publish(&self, full: bool) -> Result<(), StoreError> {
        let now = self.clock.now();
        let mut queued = false;
        {
            let mut conn = self.db.write_conn().await?;
            for t in &self.config.mirrors.targets {
                queued |= mirrors::request_publish(&mut conn, &t.channel(), full, now).await?;
            }
        }
        if queued {
            self.changed();
        }
        Ok(())
    }

    /// Queues a publish on every mirror behind the change counter with none waiting.
    pub async fn queue_behind(&self) -> Result<(), StoreError> {
        let behind = {
            let mut conn = self.db.pool().acquire().await?;
            let version = changes::version(&mut conn).await?;
            mirrors::behind(&mut conn, version).await?
        };
        if behind.is_empty() {
            return Ok(());
        }
        let now = self.clock.now();
        let mut queued = false;
        {
            let mut conn = self.db.write_conn().await?;
            for (name, never) in behind {
                let channel = format!("mirror:{name}");
                if self
                    .config
                    .mirrors
                    .targets
                    .iter()
                    .any(|t| t.channel() == channel)
                {
                    queued |= mirrors::request_publish(&mut conn, &channel, never, now).await?;
                }
            }
        }
        if queued {
            self.changed();
        }
        Ok(())
    }
}
