//! Reading a Bluesky account's replies and mentions: `app.bsky.notification.listNotifications`
//! (newest first, `cursor` for older pages), reasons `reply` and `mention`. A post's
//! `record.reply` names its thread's root and parent, so which incident's thread it is in needs
//! no further request (`app.bsky.feed.getPostThread` is not asked).
//!
//! The stored cursor is a walk down the list: `seen`, the newest `indexedAt` fully read; while
//! a walk is under way, `upto` (the newest of this walk) and `next` (the page cursor to go on
//! from). A walk ends at the first notification older than `seen` or at the list's end; then
//! `seen` becomes `upto`. The first walk reads one page. Rate-limit headers: `RateLimit-Limit`,
//! `-Remaining`, `-Reset` (Unix seconds).

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Listener, Page, Post};
use crate::channels::bluesky::{web_url, BlueskyChannel, LIMIT};
use crate::channels::fit::Counter;
use crate::channels::{Reply, SendError};
use crate::domain::inbox::{bounded, safe_link};

/// Notifications asked per page (the lexicon's maximum is 100).
pub const PAGE: usize = 50;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Walk {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upto: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

#[derive(Deserialize)]
struct List {
    notifications: Vec<Notification>,
    cursor: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Notification {
    uri: String,
    cid: String,
    author: Author,
    reason: String,
    #[serde(default)]
    record: serde_json::Value,
    indexed_at: DateTime<Utc>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Author {
    did: String,
    handle: String,
    #[serde(default)]
    display_name: Option<String>,
}

fn uri_cid(v: &serde_json::Value) -> Option<(String, String)> {
    Some((
        v["uri"].as_str()?.to_string(),
        v["cid"].as_str()?.to_string(),
    ))
}

#[async_trait]
impl Listener for BlueskyChannel {
    fn network(&self) -> &'static str {
        "bluesky"
    }

    fn key(&self, remote_id: &str) -> String {
        remote_id.split(' ').next().unwrap_or(remote_id).to_string()
    }

    fn measure(&self, reply: &Reply) -> (usize, usize) {
        (Counter::Graphemes.count(&reply.text), LIMIT)
    }

    async fn poll(
        &self,
        cursor: Option<&str>,
        _known: &HashSet<String>,
        now: DateTime<Utc>,
    ) -> Result<Page, SendError> {
        let walk: Walk = cursor
            .and_then(|c| serde_json::from_str(c).ok())
            .unwrap_or_default();
        let mut query = vec![("limit", PAGE.to_string())];
        if let Some(next) = &walk.next {
            query.push(("cursor", next.clone()));
        }
        let (v, rate) = self
            .query("app.bsky.notification.listNotifications", &query, now)
            .await?;
        let list: List = serde_json::from_value(v).map_err(|e| {
            SendError::retryable(format!("listNotifications: unreadable answer: {e}"))
        })?;
        let first_walk = walk.seen.is_none() && walk.next.is_none();
        let upto = walk
            .upto
            .or_else(|| list.notifications.first().map(|n| n.indexed_at))
            .or(walk.seen);
        let mut reached = first_walk || list.cursor.is_none() || list.notifications.is_empty();
        let mut posts = Vec::new();
        for n in &list.notifications {
            if walk.seen.is_some_and(|seen| n.indexed_at < seen) {
                reached = true;
                continue;
            }
            if n.reason != "reply" && n.reason != "mention" {
                continue;
            }
            let reply = &n.record["reply"];
            let parent = uri_cid(&reply["parent"]);
            let root = uri_cid(&reply["root"]);
            let thread = [&parent, &root]
                .into_iter()
                .flatten()
                .map(|(uri, _)| uri.clone())
                .collect();
            let posted_at = n.record["createdAt"]
                .as_str()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map_or(n.indexed_at, |t| t.with_timezone(&Utc));
            posts.push(Post {
                remote_id: format!("{} {}", n.uri, n.cid),
                thread,
                root_ref: Some(root.map_or_else(
                    || format!("{} {}", n.uri, n.cid),
                    |(u, c)| format!("{u} {c}"),
                )),
                author_id: n.author.did.clone(),
                handle: n.author.handle.clone(),
                name: bounded(n.author.display_name.as_deref().unwrap_or("")),
                text: bounded(n.record["text"].as_str().unwrap_or("")),
                url: safe_link(web_url(&n.uri).as_deref()),
                posted_at,
            });
        }
        posts.reverse();
        let next = if reached {
            Walk {
                seen: upto,
                upto: None,
                next: None,
            }
        } else {
            Walk {
                seen: walk.seen,
                upto,
                next: list.cursor.clone(),
            }
        };
        Ok(Page {
            posts,
            cursor: Some(serde_json::to_string(&next).unwrap_or_default()),
            more: !reached,
            rate,
        })
    }
}
