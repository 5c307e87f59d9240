//! Builds the application: pool, migrations, templates, channels, workers, router; and runs it
//! with a graceful shutdown.

use std::collections::BTreeMap;
use std::ops::Deref;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::channels::{self, Channel};
use crate::clock::Clock;
use crate::commands::Env;
use crate::config::Config;
use crate::outbox::Outbox;
use crate::render::cache::PageCache;
use crate::render::{pages, snapshot, Renderer};
use crate::scheduler::Scheduler;
use crate::store::Db;

/// Everything a request, a worker or a test needs. Cheap to clone.
#[derive(Clone)]
pub struct App(Arc<AppInner>);

pub struct AppInner {
    pub config: Arc<Config>,
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub renderer: Arc<Renderer>,
    pub channels: BTreeMap<String, Arc<dyn Channel>>,
    /// Moves on every commit, waking this instance's delivery workers.
    pub changes: watch::Sender<u64>,
    /// Names this instance's leases.
    pub instance: String,
    /// The rendered public pages, feeds and v2 JSON.
    pub pages: PageCache,
}

impl Deref for App {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}

/// Puts an [`App`] together; tests replace channels or the clock through it.
pub struct AppBuilder {
    config: Config,
    clock: Arc<dyn Clock>,
    channels: BTreeMap<String, Arc<dyn Channel>>,
    migrate: bool,
}

impl AppBuilder {
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Uses `channel` for the configured channel of the same id instead of building it.
    pub fn channel(mut self, channel: Arc<dyn Channel>) -> Self {
        self.channels.insert(channel.id().to_string(), channel);
        self
    }

    /// Whether to apply migrations on start (default: yes).
    pub fn migrate(mut self, migrate: bool) -> Self {
        self.migrate = migrate;
        self
    }

    pub async fn build(self) -> anyhow::Result<App> {
        let config = Arc::new(self.config);
        let db = Db::connect(
            config.database.url.expose(),
            config.database.max_connections,
        )
        .await
        .context("cannot open the database (check database.url or DATABASE_URL)")?;
        if self.migrate {
            db.migrate()
                .await
                .context("cannot apply database migrations")?;
        }
        let renderer = Arc::new(Renderer::new(&config.site.templates_dir));
        renderer.check()?;
        let mut channels = channels::build(&config, &renderer)?;
        for (id, ch) in self.channels {
            anyhow::ensure!(
                channels.contains_key(&id),
                "no channel `{id}` is configured"
            );
            channels.insert(id, ch);
        }
        let mut suffix = [0u8; 4];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut suffix);
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "candor".into());
        let instance = format!("{host}-{}-{}", std::process::id(), hex::encode(suffix));
        let (changes, _) = watch::channel(0);
        let first = {
            let mut conn = db.pool().acquire().await?;
            let now = self.clock.now();
            let snap = snapshot::build(&mut conn, &config, now).await?;
            pages::build(snap, &config, &renderer, now)?
        };
        Ok(App(Arc::new(AppInner {
            config,
            db,
            clock: self.clock,
            renderer,
            channels,
            changes,
            instance,
            pages: PageCache::new(first),
        })))
    }
}

impl App {
    pub fn builder(config: Config) -> AppBuilder {
        AppBuilder {
            config,
            clock: Arc::new(crate::clock::SystemClock),
            channels: BTreeMap::new(),
            migrate: true,
        }
    }

    /// What commands need besides a transaction.
    pub fn env(&self) -> Env {
        Env {
            config: self.config.clone(),
            renderer: self.renderer.clone(),
            backend: self.db.backend(),
        }
    }

    /// Call after every commit: wakes this instance's delivery workers.
    pub fn changed(&self) {
        self.changes.send_modify(|v| *v = v.wrapping_add(1));
    }

    pub fn scheduler(&self) -> Scheduler {
        Scheduler::new(
            self.db.clone(),
            self.clock.clone(),
            self.env(),
            self.changes.clone(),
        )
    }

    pub fn outbox(&self) -> Outbox {
        Outbox::new(
            self.db.clone(),
            self.clock.clone(),
            &self.config,
            &self.channels,
            &self.instance,
        )
    }

    /// Rebuilds the public pages from the database now.
    pub async fn rebuild_pages(&self) -> anyhow::Result<()> {
        let now = self.clock.now();
        let snap = {
            let mut conn = self.db.pool().acquire().await?;
            snapshot::build(&mut conn, &self.config, now).await?
        };
        let built = pages::build(snap, &self.config, &self.renderer, now)?;
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
        loop {
            let local = tokio::select! {
                _ = stop.cancelled() => break,
                r = changes.changed() => r.is_ok(),
                _ = tokio::time::sleep(refresh) => false,
            };
            let result = if local {
                self.rebuild_pages().await.map(|_| true)
            } else {
                self.refresh_pages().await
            };
            match result {
                Ok(_) if failing => {
                    tracing::info!("status page is fresh again");
                    failing = false;
                }
                Ok(_) => {}
                Err(e) if !failing => {
                    tracing::warn!(error = %e, "cannot refresh the status page; serving the last good one");
                    failing = true;
                }
                Err(_) => {}
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }

    pub fn router(&self) -> axum::Router {
        crate::http::router(self.clone())
    }

    /// Serves HTTP and runs the scheduler and delivery workers until `shutdown` is cancelled;
    /// then stops taking work, lets in-flight deliveries finish within `server.shutdown_grace`,
    /// and hands back whatever is still held.
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let stop_workers = CancellationToken::new();
        let scheduler = tokio::spawn(self.scheduler().run(stop_workers.clone()));
        let outbox = Arc::new(self.outbox());
        let mut workers = outbox.spawn(self.changes.subscribe(), stop_workers.clone());
        workers.push(scheduler);
        workers.push(tokio::spawn(
            self.clone().keep_pages_fresh(stop_workers.clone()),
        ));
        tracing::info!(listen = %listener.local_addr()?, instance = %self.instance, "candor is serving");
        let grace = self.config.server.shutdown_grace;
        let http = axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown.clone().cancelled_owned());
        let http = tokio::spawn(async move { http.await });
        shutdown.cancelled().await;
        tracing::info!(grace = %humantime::format_duration(grace), "shutting down");
        stop_workers.cancel();
        let deadline = tokio::time::Instant::now() + grace;
        let aborts: Vec<_> = workers.iter().map(|w| w.abort_handle()).collect();
        if tokio::time::timeout_at(deadline, futures::future::join_all(workers))
            .await
            .is_err()
        {
            tracing::warn!(
                "in-flight work did not finish within the grace period; handing it back"
            );
            aborts.iter().for_each(|a| a.abort());
        }
        match outbox.release().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(released = n, "handed back deliveries still held"),
            Err(e) => {
                tracing::warn!(error = %e, "could not hand back held deliveries; their leases will expire")
            }
        }
        let http_abort = http.abort_handle();
        if tokio::time::timeout_at(deadline, http).await.is_err() {
            http_abort.abort();
        }
        self.db.close().await;
        Ok(())
    }
}
