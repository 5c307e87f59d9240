//! Static mirrors: the public site published, as files, where Candor's own outage cannot reach
//! (an S3-compatible bucket behind a CDN, or a directory behind another web server).
//!
//! Publishing is a delivery like any other. The watcher (`watch`) queues a publish on a
//! mirror's delivery channel (`mirror:<name>`) whenever the public change counter moves past
//! what the mirror holds, once a minute (the heartbeat, and documents that move with time), and
//! a full one at start and on `candor mirror sync`. The outbox claims it with a lease, retries
//! it with backoff, counts it in `/metrics` and shows it in the console like any message; a
//! mirror that fails never stops the others (each has its own lane).
//!
//! A publish (`publish`) writes only what changed: every document's ETag is compared with the
//! manifest of what the mirror holds (`mirror_objects`), in an order that never leaves a page
//! linking to something not yet there (files, then incident and history pages, then feeds and
//! JSON, then `index.html`), and ends with `heartbeat.json`. One publish per mirror runs at a
//! time across instances (`mirror_targets.lease_owner`).

mod publish;
pub mod target;
mod watch;

use std::sync::{Arc, OnceLock, Weak};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::app::{App, AppInner};
use crate::channels::{Channel, DeliveryContext, Message, SendError, Sent};
use crate::config::{Config, MirrorTarget};
pub use publish::Report;
use target::Target;

/// What a publish delivery asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Publish {
    /// Everything (at start, on `candor mirror sync`, or when the mirror's history is not
    /// known), checked against a listing of the target; otherwise what changed.
    pub full: bool,
}

/// One mirror as a delivery channel.
pub struct MirrorChannel {
    channel: String,
    name: String,
    target: Target,
    app: OnceLock<Weak<AppInner>>,
    /// This instance's copy of the manifest, with the generation it was read at.
    manifest: tokio::sync::Mutex<Option<(i64, std::collections::HashMap<String, String>)>>,
    /// Per incident, its history line as last published here (see `publish::history_line`).
    history_lines: tokio::sync::Mutex<std::collections::HashMap<i64, u64>>,
}

impl MirrorChannel {
    pub fn new(config: &MirrorTarget, timeout: std::time::Duration) -> anyhow::Result<Self> {
        Ok(Self {
            channel: config.channel(),
            name: config.name().to_string(),
            target: Target::open(config, timeout)?,
            app: OnceLock::new(),
            manifest: tokio::sync::Mutex::new(None),
            history_lines: tokio::sync::Mutex::new(std::collections::HashMap::new()),
        })
    }

    /// Gives the channel the application it publishes from (done once the app is built).
    pub fn bind(&self, app: &App) {
        let _ = self.app.set(app.weak());
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn app(&self) -> Result<App, SendError> {
        self.app
            .get()
            .and_then(Weak::upgrade)
            .map(App::from_inner)
            .ok_or_else(|| SendError::retryable("the application is shutting down"))
    }
}

#[async_trait]
impl Channel for MirrorChannel {
    fn id(&self) -> &str {
        &self.channel
    }

    async fn deliver(&self, _msg: &Message, _ctx: &DeliveryContext) -> Result<Sent, SendError> {
        Err(SendError::permanent(format!(
            "`{}` is a mirror: it publishes the site, not messages",
            self.channel
        )))
    }

    async fn publish(&self, p: &Publish, ctx: &DeliveryContext) -> Result<Sent, SendError> {
        let app = self.app()?;
        let report = self.run(&app, p.full, ctx).await?;
        if report.written + report.deleted > 0 || p.full {
            tracing::info!(
                mirror = %self.name,
                full = p.full,
                written = report.written,
                deleted = report.deleted,
                unchanged = report.unchanged,
                revision = report.revision,
                "mirror published"
            );
        } else {
            tracing::debug!(mirror = %self.name, revision = report.revision, "mirror current; heartbeat written");
        }
        app.metrics.mirror_published(&self.name, &report);
        Ok(Sent {
            remote_id: Some(format!("revision {}", report.revision)),
            remote_url: None,
        })
    }

    fn threads(&self) -> bool {
        false
    }
}

/// Builds the configured mirrors' channels.
pub fn build(config: &Config) -> anyhow::Result<Vec<Arc<MirrorChannel>>> {
    let timeout = std::time::Duration::from_secs(30);
    config
        .mirrors
        .targets
        .iter()
        .map(|t| MirrorChannel::new(t, timeout).map(Arc::new))
        .collect()
}

/// The object key of a public path: `/` → `index.html`, `/incidents/42` → `incidents/42`.
pub fn key_of(path: &str) -> String {
    match path {
        "/" => "index.html".into(),
        p => p.trim_start_matches('/').to_string(),
    }
}

/// The public path of an object key (the inverse of [`key_of`]).
pub fn path_of(key: &str) -> String {
    match key {
        "index.html" => "/".into(),
        k => format!("/{k}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_need_no_server_side_routing() {
        assert_eq!(key_of("/"), "index.html");
        assert_eq!(key_of("/incidents/42"), "incidents/42");
        assert_eq!(key_of("/history/2026-11"), "history/2026-11");
        assert_eq!(key_of("/api/v2/summary.json"), "api/v2/summary.json");
        for p in ["/", "/incidents/42", "/feed.atom"] {
            assert_eq!(path_of(&key_of(p)), p);
        }
    }
}
