//! The `log` channel: one JSON line per outgoing message, to stdout or appended to a file. The
//! default config uses it, so a first run needs no credentials.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

use super::{Channel, DeliveryContext, Message, SendError, Sent};
use crate::clock::{Clock, SystemClock};
use crate::render::Renderer;

enum Sink {
    Stdout,
    File(PathBuf),
}

pub struct LogChannel {
    id: String,
    sink: Sink,
    lock: Mutex<()>,
    renderer: Arc<Renderer>,
}

impl LogChannel {
    pub fn open(id: &str, path: &str, renderer: Arc<Renderer>) -> anyhow::Result<Self> {
        let sink = if path == "-" {
            Sink::Stdout
        } else {
            let p = PathBuf::from(path);
            if let Some(parent) = p.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)?;
            }
            // Fail at start, not at the first incident, if the file cannot be written.
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&p)
                .map_err(|e| {
                    anyhow::anyhow!("channels.{id}.path: cannot open {}: {e}", p.display())
                })?;
            Sink::File(p)
        };
        Ok(Self {
            id: id.to_string(),
            sink,
            lock: Mutex::new(()),
            renderer,
        })
    }
}

#[async_trait]
impl Channel for LogChannel {
    fn id(&self) -> &str {
        &self.id
    }

    async fn deliver(&self, msg: &Message, ctx: &DeliveryContext) -> Result<Sent, SendError> {
        let text = self
            .renderer
            .post_text(msg, None)
            .map_err(|e| SendError::permanent(format!("template: {e}")))?;
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
        let _guard = self.lock.lock().await;
        let result = match &self.sink {
            Sink::Stdout => {
                let mut out = tokio::io::stdout();
                match out.write_all(&bytes).await {
                    Ok(()) => out.flush().await,
                    Err(e) => Err(e),
                }
            }
            Sink::File(path) => {
                let file = tokio::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .await;
                match file {
                    Ok(mut f) => match f.write_all(&bytes).await {
                        Ok(()) => f.flush().await,
                        Err(e) => Err(e),
                    },
                    Err(e) => Err(e),
                }
            }
        };
        result.map_err(|e| SendError::retryable(format!("write failed: {e}")))?;
        Ok(Sent {
            remote_id: Some(format!("log-{}", ctx.delivery_id)),
            remote_url: None,
        })
    }
}
