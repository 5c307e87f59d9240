//! The `discord` channel: Discord's Execute Webhook (`POST` to the webhook URL with
//! `?wait=true`, so Discord answers with the message it created, or with the error, instead of
//! a bare 204). Mentions are disabled (`allowed_mentions.parse: []`): an incident title never
//! pings `@everyone`. A 429 carries `Retry-After` and `X-RateLimit-Reset-After` (seconds).
//!
//! Threads, as Execute Webhook documents them:
//!
//! - A **forum channel** (`forum: true`) takes no plain message (400, code 220001). An
//!   incident's first message starts a post: the JSON body's `thread_name` (the incident's
//!   title, cut to Discord's 100 characters). The answer's `channel_id` is the new thread's
//!   id, kept as that delivery's remote id (the incident's thread root here); every later
//!   message of the incident goes into it with the query parameter `?thread_id=`.
//! - A **fixed thread** (`thread_id`): every message goes into that existing thread (a text
//!   channel's thread, or a forum post made by hand) with `?thread_id=`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;

use super::fit::Counter;
use super::{
    classify_status, describe_reqwest_error, error_text, wait_hint, Channel, DeliveryContext,
    Message, Preview, Reset, SendError, Sent,
};
use crate::config::Secret;
use crate::render::Renderer;

/// A message's `content` limit, in characters.
pub const LIMIT: usize = 2000;

/// A thread's name limit (`thread_name`, 1 to 100 characters).
pub const THREAD_NAME_LIMIT: usize = 100;

/// Where in the webhook's channel messages go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Threads {
    /// Into the channel itself (a text channel).
    None,
    /// A forum channel: one post (thread) per incident.
    Forum,
    /// Into this existing thread.
    Fixed(String),
}

pub struct DiscordChannel {
    id: String,
    url: Secret,
    threads: Threads,
    http: reqwest::Client,
    renderer: Arc<Renderer>,
}

impl DiscordChannel {
    pub fn new(
        id: &str,
        url: Secret,
        threads: Threads,
        timeout: Duration,
        renderer: Arc<Renderer>,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            id: id.to_string(),
            url,
            threads,
            http: super::http_client(timeout)?,
            renderer,
        })
    }

    fn text(&self, msg: &Message) -> Result<String, SendError> {
        super::fitted_post(&self.renderer, msg, LIMIT, Counter::Chars)
    }
}

/// A forum post's name for an incident: its title, within Discord's limit.
pub fn thread_name(msg: &Message) -> String {
    let title = msg.title.trim();
    if title.is_empty() {
        super::truncate(&msg.site_name, THREAD_NAME_LIMIT)
    } else {
        super::truncate(title, THREAD_NAME_LIMIT)
    }
}

#[async_trait]
impl Channel for DiscordChannel {
    fn id(&self) -> &str {
        &self.id
    }

    fn preview(&self, msg: &Message) -> Option<Preview> {
        let text = self.text(msg).ok()?;
        Some(Preview {
            kind: "discord",
            length: Counter::Chars.count(&text),
            text,
            limit: Some(LIMIT),
        })
    }

    async fn deliver(&self, msg: &Message, ctx: &DeliveryContext) -> Result<Sent, SendError> {
        let text = self.text(msg)?;
        let mut url = url::Url::parse(self.url.expose())
            .map_err(|_| SendError::permanent("webhook_url is not a URL"))?;
        let mut body = json!({ "content": text, "allowed_mentions": { "parse": [] } });
        let thread = match &self.threads {
            Threads::None => None,
            Threads::Fixed(id) => Some(id.as_str()),
            Threads::Forum => ctx.thread_root.as_deref(),
        };
        let starts_thread = self.threads == Threads::Forum && thread.is_none();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("wait", "true");
            if let Some(thread) = thread {
                q.append_pair("thread_id", thread);
            }
        }
        if starts_thread {
            body["thread_name"] = json!(thread_name(msg));
        }
        let resp = self
            .http
            .post(url)
            .json(&body)
            .send()
            .await
            .map_err(describe_reqwest_error)?;
        let status = resp.status();
        if status.is_success() {
            let v: serde_json::Value = resp
                .json()
                .await
                .map_err(|e| SendError::retryable(format!("unreadable answer: {e}")))?;
            // A new forum post is known by its thread's id: what later messages are sent into.
            let key = if starts_thread { "channel_id" } else { "id" };
            return Ok(Sent {
                remote_id: v[key].as_str().map(str::to_string),
                remote_url: None,
            });
        }
        let wait = wait_hint(
            &resp,
            "x-ratelimit-reset-after",
            Reset::SecondsFromNow,
            ctx.now,
        );
        let body = resp.text().await.unwrap_or_default();
        Err(classify_status(
            status,
            &error_text(&body, &["message"]),
            wait,
        ))
    }
}
