//! The `log` channel: one JSON line per outgoing message, to stdout or appended to a file. The
//! default config uses it, so a first run needs no credentials.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::Mutex;

use super::{Channel, DeliveryContext, Message, SendError, Sent};
use crate::clock::{Clock, SystemClock};
use crate::render::Renderer;

enum Sink {
    Stdout(tokio::io::Stdout),
    File(tokio::fs::File),
}

pub struct LogChannel {
    id: String,
    /// One writer at a time, so lines never interleave.
    sink: Mutex<Sink>,
    renderer: Arc<Renderer>,
}

impl LogChannel {
    pub fn open(id: &str, path: &str, renderer: Arc<Renderer>) -> anyhow::Result<Self> {
        let sink = if path == "-" {
            Sink::Stdout(tokio::io::stdout())
        } else {
            let p = std::path::Path::new(path);
            if let Some(parent) = p.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)?;
            }
            // Opened once, at start: a file that cannot be written fails the start, not the
            // first incident.
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| {
                    anyhow::anyhow!("channels.{id}.path: cannot open {}: {e}", p.display())
                })?;
            Sink::File(tokio::fs::File::from_std(file))
        };
        Ok(Self {
            id: id.to_string(),
            sink: Mutex::new(sink),
            renderer,
        })
    }
}

#[async_trait]
impl Channel for LogChannel {
    fn id(&self) -> &str {
        &self.id
    }

    fn threads(&self) -> bool {
        false
    }

    fn preview(&self, msg: &Message) -> Option<super::Preview> {
        let text = super::post_text(&self.renderer, msg).ok()?;
        Some(super::Preview {
            kind: "log",
            length: text.chars().count(),
            text,
            limit: None,
        })
    }

    async fn deliver(&self, msg: &Message, ctx: &DeliveryContext) -> Result<Sent, SendError> {
        let text = super::post_text(&self.renderer, msg)?;
        let line = serde_json::json!({
            // When the line was written, by the wall clock: what benchmarks measure against.
            "logged_at": SystemClock.now(),
            "channel": self.id,
            "delivery_id": ctx.delivery_id,
            "attempt": ctx.attempt,
            "audience": msg.audience,
            "kind": msg.kind,
            "incident_id": msg.incident_id,
            "update_id": msg.update_id,
            "text": text,
            "message": msg,
        });
        let mut bytes =
            serde_json::to_vec(&line).map_err(|e| SendError::permanent(e.to_string()))?;
        bytes.push(b'\n');
        let mut sink = self.sink.lock().await;
        let out: &mut (dyn AsyncWrite + Send + Unpin) = match &mut *sink {
            Sink::Stdout(s) => s,
            Sink::File(f) => f,
        };
        let written = match out.write_all(&bytes).await {
            Ok(()) => out.flush().await,
            Err(e) => Err(e),
        };
        written.map_err(|e| SendError::retryable(format!("write failed: {e}")))?;
        Ok(Sent {
            remote_id: Some(format!("log-{}", ctx.delivery_id)),
            remote_url: None,
        })
    }
}
