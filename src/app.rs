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
use crate::render::Renderer;
use crate::scheduler::Scheduler;
use crate::status_page::cache::PageCache;
use crate::status_page::{pages, snapshot};
use crate::store::Db;

/// What one `candor serve` process does. Several instances on one PostgreSQL may mix roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Role {
    /// Serve the status page and the API only.
    Web,
    /// Run the scheduler and deliver messages only (HTTP answers health checks).
    Worker,
    /// Both.
    #[default]
    All,
}

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
    /// The read model the pages are built from, updated by each rebuild with what changed.
    pub model: tokio::sync::Mutex<crate::status_page::model::ReadModel>,
    /// Taken by whoever rebuilds the pages after finding them stale (see `refresh_pages`).
    pub rebuilding: tokio::sync::Mutex<()>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The email channel subscribers sign up for, if one is configured.
    pub email: Option<Arc<channels::email::EmailChannel>>,
    /// The state of this instance's background loops (reported by `/readyz`).
    pub loops: Arc<crate::supervise::Loops>,
    /// The configured mirrors (also in `channels`, as `mirror:<name>`).
    pub mirrors: Vec<Arc<crate::mirror::MirrorChannel>>,
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
    durability: crate::store::Durability,
}

impl AppBuilder {
    /// SQLite's durability (default `FULL`); the API benchmark compares it with `NORMAL`.
    pub fn sqlite_durability(mut self, durability: crate::store::Durability) -> Self {
        self.durability = durability;
        self
    }

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
        let db = Db::connect_with(
            config.database.url.expose(),
            config.database.max_connections,
            self.durability,
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
        let email = match config.email_channel() {
            Some((id, cfg)) => {
                let ch = Arc::new(channels::email::EmailChannel::new(
                    id,
                    cfg,
                    &config.site.name,
                    &config.site.public_url,
                    &config.components,
                    db.clone(),
                    renderer.clone(),
                )?);
                channels.insert(id.to_string(), ch.clone());
                Some(ch)
            }
            None => None,
        };
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
        let mirrors = crate::mirror::build(&config)?;
        for m in &mirrors {
            channels.insert(m.id().to_string(), m.clone());
        }
        if !mirrors.is_empty() {
            let names: Vec<&str> = mirrors.iter().map(|m| m.name()).collect();
            let mut conn = db.write_conn().await?;
            crate::store::mirrors::register(&mut conn, &names).await?;
        }
        let (changes, _) = watch::channel(0);
        let mut model = crate::status_page::model::ReadModel::default();
        let first = {
            let mut conn = db.pool().acquire().await?;
            let now = self.clock.now();
            model.refresh(&mut conn, &config, now).await?;
            let snap = snapshot::assemble(&model, &mut conn, &config, now).await?;
            pages::build(snap, &config, &renderer, now, None)?
        };
        let app = App(Arc::new(AppInner {
            config,
            db,
            clock: self.clock,
            renderer,
            channels,
            changes,
            instance,
            pages: PageCache::new(first),
            model: tokio::sync::Mutex::new(model),
            rebuilding: tokio::sync::Mutex::new(()),
            metrics: Arc::new(crate::metrics::Metrics::new()),
            email,
            loops: Arc::default(),
            mirrors,
        }));
        for m in &app.mirrors {
            m.bind(&app);
        }
        Ok(app)
    }
}

impl App {
    pub fn builder(config: Config) -> AppBuilder {
        AppBuilder {
            config,
            clock: Arc::new(crate::clock::SystemClock),
            channels: BTreeMap::new(),
            migrate: true,
            durability: Default::default(),
        }
    }

    /// A handle that does not keep the application alive (held by its own mirrors).
    pub fn weak(&self) -> std::sync::Weak<AppInner> {
        Arc::downgrade(&self.0)
    }

    pub fn from_inner(inner: Arc<AppInner>) -> Self {
        Self(inner)
    }

    /// What commands need besides a transaction.
    pub fn env(&self) -> Env {
        Env {
            config: self.config.clone(),
            renderer: self.renderer.clone(),
            backend: self.db.backend(),
            metrics: self.metrics.clone(),
        }
    }

    /// Begins a unit of work whose commit wakes this instance's delivery workers.
    pub async fn begin(&self) -> Result<crate::commands::Unit, crate::store::StoreError> {
        crate::commands::Unit::begin(&self.db, Some(self.changes.clone())).await
    }

    /// Wakes this instance's delivery workers (done by [`crate::commands::Unit::commit`]).
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

    /// The inbox's poller (customers' replies and mentions; see `src/inbox`).
    pub fn inbox(&self) -> crate::inbox::Inbox {
        crate::inbox::Inbox::new(
            self.db.clone(),
            self.clock.clone(),
            self.env(),
            &self.channels,
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
            self.metrics.clone(),
            self.loops.clone(),
        )
    }

    pub fn router(&self) -> axum::Router {
        crate::http::router(self.clone())
    }

    /// Serves until `shutdown` is cancelled, in the given role: HTTP (pages and API) for `web`,
    /// the scheduler and delivery workers for `worker` (with only the health checks on HTTP),
    /// both for `all`. Then stops taking work, lets in-flight deliveries finish within
    /// `server.shutdown_grace`, and hands back whatever is still held.
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: CancellationToken,
        role: Role,
    ) -> anyhow::Result<()> {
        let stop_workers = CancellationToken::new();
        let outbox = Arc::new(self.outbox());
        let mut workers = Vec::new();
        if role != Role::Web {
            workers.push(tokio::spawn(
                self.scheduler()
                    .run(stop_workers.clone(), self.loops.clone()),
            ));
            workers.extend(outbox.spawn(self.changes.subscribe(), stop_workers.clone()));
            if !self.config.inbox.channels.is_empty() {
                workers.push(tokio::spawn(
                    self.inbox().run(stop_workers.clone(), self.loops.clone()),
                ));
            }
        }
        if role != Role::Worker {
            workers.push(tokio::spawn(
                self.clone().keep_pages_fresh(stop_workers.clone()),
            ));
        }
        if role != Role::Web && !self.mirrors.is_empty() {
            workers.push(tokio::spawn(
                self.clone().keep_mirrors(stop_workers.clone()),
            ));
        }
        // PostgreSQL: other instances' changes wake this one at once (polling stays).
        workers.push(tokio::spawn(
            self.clone().listen_for_changes(stop_workers.clone()),
        ));
        let (router, shortcut) = match role {
            Role::Worker => (crate::http::health_router(self.clone()), None),
            Role::Web | Role::All => (self.router(), Some(crate::http::fast::Shortcut::new(self))),
        };
        tracing::info!(listen = %listener.local_addr()?, instance = %self.instance, role = ?role, "candor is serving");
        let grace = self.config.server.shutdown_grace;
        // Header, idle and connection limits for the open internet; each request carries the
        // peer's address (see `http::client_addr`).
        let limits = self.config.server.clone();
        let stop_http = shutdown.clone();
        let http = tokio::spawn(async move {
            crate::http::server::serve(listener, router, shortcut, &limits, stop_http).await
        });
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
