//! Keeping the status page fresh: rebuilds after this instance's own commits, when the
//! database's change counter moves (another instance wrote), once a minute (the day bars move
//! with time), and a stale mark while the database cannot be read.

use tokio_util::sync::CancellationToken;

use super::{pages, snapshot};
use crate::app::App;

impl App {
    /// Rebuilds the public pages from the database now.
    /// Rebuilds the public pages from the database now: the read model reloads what changed
    /// since the last rebuild, and only documents whose bytes changed are compressed again.
    pub async fn rebuild_pages(&self) -> anyhow::Result<()> {
        let now = self.clock.now();
        let snap = {
            // One rebuild at a time: the model moves forward in order.
            let mut model = self.model.lock().await;
            let mut conn = self.db.pool().acquire().await?;
            model.refresh(&mut conn, &self.config, now).await?;
            snapshot::assemble(&model, &mut conn, &self.config, now).await?
        };
        // Rendering and compressing is CPU work: off the async threads.
        let (config, renderer) = (self.config.clone(), self.renderer.clone());
        let previous = self.pages.current();
        let built = tokio::task::spawn_blocking(move || {
            pages::build(snap, &config, &renderer, now, Some(&previous))
        })
        .await??;
        self.pages.replace(built);
        Ok(())
    }

    /// Rebuilds the pages if something public changed in the database (another instance may
    /// have written it), or if they are a minute old (the day bars move with time). Returns
    /// whether it rebuilt.
    pub async fn refresh_pages(&self) -> anyhow::Result<bool> {
        if !self.pages_stale().await? {
            return Ok(false);
        }
        // Callers (the refresher, each mirror's publish) that find the pages stale at the same
        // time take turns, and each looks again when its turn comes: one rebuild per change,
        // not one per caller.
        let _turn = self.rebuilding.lock().await;
        if !self.pages_stale().await? {
            return Ok(false);
        }
        self.rebuild_pages().await?;
        Ok(true)
    }

    /// Whether the pages miss a change in the database, carry the stale mark, or are a minute
    /// old (or of another day).
    async fn pages_stale(&self) -> anyhow::Result<bool> {
        let current = self.pages.current();
        let now = self.clock.now();
        let revision = {
            let mut conn = self.db.pool().acquire().await?;
            crate::store::updates::revision(&mut conn).await?
        };
        Ok(revision != current.snapshot.revision
            || current.snapshot.stale_since.is_some()
            || now - current.built_at >= chrono::Duration::seconds(60)
            || now.date_naive() != current.built_at.date_naive())
    }

    /// Keeps the pages fresh until `stop`: at once after this instance's own changes, every
    /// `status_page.refresh` for other instances'. After a rebuild the loop rests as long as the
    /// rebuild took (at most 200 ms), so a burst of writes costs a few rebuilds, not one per
    /// write, and rebuilding never takes more than about half the CPU; when rebuilds are quick,
    /// a change shows at once.
    pub async fn keep_pages_fresh(self, stop: CancellationToken) {
        let mut changes = self.changes.subscribe();
        let refresh = self.config.status_page.refresh;
        let mut failing = false;
        self.loops.started("pages");
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = changes.changed() => {},
                _ = tokio::time::sleep(refresh) => {},
            }
            // Supervised: a panic while rendering is a failed pass (the last good pages stay).
            let began = tokio::time::Instant::now();
            let result = self
                .loops
                // A wake-up (this instance's commit, or another's NOTIFY) and the poll alike
                // rebuild only if the change counter moved or the minute turned.
                .pass("pages", self.refresh_pages())
                .await;
            match &result {
                Ok(_) if failing => {
                    tracing::info!("status page is fresh again");
                    failing = false;
                }
                Ok(_) => {}
                Err(e) if !failing => {
                    tracing::warn!(error = %e, "cannot refresh the status page; serving the last good one");
                    failing = true;
                    self.mark_pages_stale();
                }
                Err(_) => {}
            }
            let rest = match result {
                Ok(true) => began.elapsed().min(std::time::Duration::from_millis(200)),
                Ok(false) => std::time::Duration::ZERO,
                Err(_) => std::time::Duration::from_millis(200),
            };
            tokio::time::sleep(rest).await;
        }
        self.loops.stopped("pages");
    }

    /// On PostgreSQL, listens for other instances' public changes (`NOTIFY candor_changes`,
    /// sent at commit by every change: see `store::changes::bump`) and wakes this instance's
    /// page refresher and delivery workers at once. Polling stays as the fallback: a lost
    /// connection is retried with a growing pause, and a change missed meanwhile is caught by
    /// the next poll (and by the refresh this task asks for after every reconnect).
    pub async fn listen_for_changes(self, stop: CancellationToken) {
        if self.db.backend() != crate::store::Backend::Postgres {
            return;
        }
        let mut backoff = crate::supervise::RestartBackoff::default();
        self.loops.started("listen");
        loop {
            let since = tokio::time::Instant::now();
            let listened = async {
                let mut listener =
                    sqlx::postgres::PgListener::connect(self.config.database.url.expose()).await?;
                listener.listen("candor_changes").await?;
                // Anything committed before the LISTEN took effect: look once.
                self.changed();
                self.loops.ok("listen");
                loop {
                    listener.recv().await?;
                    self.changed();
                }
                #[allow(unreachable_code)]
                Ok::<(), sqlx::Error>(())
            };
            tokio::select! {
                _ = stop.cancelled() => break,
                r = listened => if let Err(e) = r {
                    // The URL may hold a password: the error names the cause only.
                    tracing::warn!(error = %e, "not listening for other instances' changes; polling until reconnected");
                    self.loops.failed("listen", &e.to_string());
                    if since.elapsed() > std::time::Duration::from_secs(60) {
                        backoff.reset();
                    }
                }
            }
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(backoff.failed()) => {}
            }
        }
        self.loops.stopped("listen");
    }

    /// The database cannot be reached: keep serving the last good pages, re-rendered from the
    /// snapshot in memory with a note saying since when (no database needed).
    pub fn mark_pages_stale(&self) {
        let current = self.pages.current();
        if current.snapshot.stale_since.is_some() {
            return;
        }
        let mut snap = (*current.snapshot).clone();
        snap.stale_since = Some(self.clock.now());
        match pages::build(
            snap,
            &self.config,
            &self.renderer,
            current.built_at,
            Some(&current),
        ) {
            Ok(p) => self.pages.replace(p),
            Err(e) => tracing::error!(error = %e, "cannot mark the status page stale"),
        }
    }
}
