//! Keeping the status page fresh: rebuilds after this instance's own commits, when the
//! database's change counter moves (another instance wrote), once a minute (the day bars move
//! with time), and a stale mark while the database cannot be read.

use tokio_util::sync::CancellationToken;

use super::{pages, snapshot};
use crate::app::App;

impl App {
    /// Rebuilds the public pages from the database now.
    pub async fn rebuild_pages(&self) -> anyhow::Result<()> {
        let now = self.clock.now();
        let snap = {
            let mut conn = self.db.pool().acquire().await?;
            snapshot::build(&mut conn, &self.config, now).await?
        };
        // Rendering and compressing every page is CPU work: off the async threads.
        let (config, renderer) = (self.config.clone(), self.renderer.clone());
        let built =
            tokio::task::spawn_blocking(move || pages::build(snap, &config, &renderer, now))
                .await??;
        self.pages.replace(built);
        Ok(())
    }

    /// Rebuilds the pages if something public changed in the database (another instance may
    /// have written it), or if they are a minute old (the day bars move with time). Returns
    /// whether it rebuilt.
    pub async fn refresh_pages(&self) -> anyhow::Result<bool> {
        let current = self.pages.current();
        let now = self.clock.now();
        let revision = {
            let mut conn = self.db.pool().acquire().await?;
            crate::store::updates::revision(&mut conn).await?
        };
        let stale = revision != current.snapshot.revision
            || current.snapshot.stale_since.is_some()
            || now - current.built_at >= chrono::Duration::seconds(60)
            || now.date_naive() != current.built_at.date_naive();
        if stale {
            self.rebuild_pages().await?;
        }
        Ok(stale)
    }

    /// Keeps the pages fresh until `stop`: at once after this instance's own changes, every
    /// `status_page.refresh` for other instances'. Rebuilds are spaced at least 200 ms apart,
    /// so a burst of writes costs a few rebuilds, not one per write.
    pub async fn keep_pages_fresh(self, stop: CancellationToken) {
        let mut changes = self.changes.subscribe();
        let refresh = self.config.status_page.refresh;
        let mut failing = false;
        self.loops.started("pages");
        loop {
            let local = tokio::select! {
                _ = stop.cancelled() => break,
                r = changes.changed() => r.is_ok(),
                _ = tokio::time::sleep(refresh) => false,
            };
            // Supervised: a panic while rendering is a failed pass (the last good pages stay).
            let result = self
                .loops
                .pass("pages", async {
                    if local {
                        self.rebuild_pages().await.map(|_| true)
                    } else {
                        self.refresh_pages().await
                    }
                })
                .await;
            match result {
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
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        self.loops.stopped("pages");
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
        match pages::build(snap, &self.config, &self.renderer, current.built_at) {
            Ok(p) => self.pages.replace(p),
            Err(e) => tracing::error!(error = %e, "cannot mark the status page stale"),
        }
    }
}
