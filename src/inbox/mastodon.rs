//! Reading a Mastodon account's mentions: `GET /api/v1/notifications?types[]=mention`, walked
//! forward with `min_id` (the cursor: the newest notification id kept, read from the `Link`
//! header's `rel="prev"`), and `GET /api/v1/statuses/:id/context` for a reply whose parent is
//! not one of Candor's posts (its ancestors say which thread it is in). Rate-limit headers:
//! `X-RateLimit-Limit`, `-Remaining`, `-Reset` (ISO 8601).

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{rate_of, Listener, Page, Post};
use crate::channels::mastodon::MastodonChannel;
use crate::channels::{classify_status, error_text, wait_hint, Reply, Reset, SendError};
use crate::domain::inbox::{bounded, html_to_text, mastodon_length, safe_link, Rate};

/// Notifications asked per page (Mastodon's maximum is 80; its default 40).
pub const PAGE: usize = 40;

#[derive(Deserialize)]
struct Notification {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    status: Option<Status>,
}

#[derive(Deserialize)]
struct Status {
    id: String,
    created_at: DateTime<Utc>,
    in_reply_to_id: Option<String>,
    content: String,
    url: Option<String>,
    uri: Option<String>,
    account: Account,
}

#[derive(Deserialize)]
struct Account {
    id: String,
    acct: String,
    #[serde(default)]
    display_name: String,
}

#[derive(Deserialize)]
struct Context {
    ancestors: Vec<Ancestor>,
}

#[derive(Deserialize)]
struct Ancestor {
    id: String,
}

/// The `min_id` of the `Link` header's `rel="prev"` link: where the next forward walk starts.
pub fn prev_min_id(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        if !params.split(';').any(|p| {
            let p = p.trim().replace(' ', "");
            p == "rel=\"prev\"" || p == "rel=prev"
        }) {
            return None;
        }
        let target = target.trim().trim_start_matches('<').trim_end_matches('>');
        let u = url::Url::parse(target).ok()?;
        u.query_pairs()
            .find(|(k, _)| k == "min_id")
            .map(|(_, v)| v.into_owned())
    })
}

/// Mastodon's ids are numbers in strings: the larger of two.
fn newer<'a>(a: &'a str, b: &'a str) -> &'a str {
    if (a.len(), a) >= (b.len(), b) {
        a
    } else {
        b
    }
}

impl MastodonChannel {
    /// `GET` as JSON, with the rate-limit headers; a failure classified as the channel does.
    async fn read<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
        now: DateTime<Utc>,
    ) -> Result<(T, Rate, Option<String>), SendError> {
        let resp = self.get(path, query).await?;
        let rate = rate_of(resp.headers(), "x-ratelimit-", Reset::Iso8601, now);
        let status = resp.status();
        if !status.is_success() {
            let wait = wait_hint(&resp, "x-ratelimit-reset", Reset::Iso8601, now);
            let body = resp.text().await.unwrap_or_default();
            let what = format!("GET {path}: {}", error_text(&body, &["error"]));
            return Err(classify_status(status, &what, wait));
        }
        let link = resp
            .headers()
            .get(reqwest::header::LINK)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let v = resp
            .json()
            .await
            .map_err(|e| SendError::retryable(format!("GET {path}: unreadable answer: {e}")))?;
        Ok((v, rate, link))
    }
}

#[async_trait]
impl Listener for MastodonChannel {
    fn network(&self) -> &'static str {
        "mastodon"
    }

    fn measure(&self, reply: &Reply) -> (usize, usize) {
        let (max, url) = self.known_limits();
        let length = mastodon_length(reply.mention.as_deref().unwrap_or(""), &reply.text, url);
        (length, max)
    }

    async fn poll(
        &self,
        cursor: Option<&str>,
        known: &HashSet<String>,
        now: DateTime<Utc>,
    ) -> Result<Page, SendError> {
        let mut query = vec![
            ("types[]", "mention".to_string()),
            ("limit", PAGE.to_string()),
        ];
        if let Some(c) = cursor {
            query.push(("min_id", c.to_string()));
        }
        let (notes, mut rate, link): (Vec<Notification>, _, _) =
            self.read("/api/v1/notifications", &query, now).await?;
        let mut next = cursor.map(str::to_string);
        for n in &notes {
            next = Some(match &next {
                Some(c) => newer(c, &n.id).to_string(),
                None => n.id.clone(),
            });
        }
        if let Some(prev) = link.as_deref().and_then(prev_min_id) {
            next = Some(match &next {
                Some(c) => newer(c, &prev).to_string(),
                None => prev,
            });
        }
        let mut posts = Vec::new();
        for n in notes.iter().rev() {
            let Some(s) = n.status.as_ref().filter(|_| n.kind == "mention") else {
                continue;
            };
            let mut thread = Vec::new();
            if let Some(parent) = &s.in_reply_to_id {
                thread.push(parent.clone());
                if !known.contains(parent) {
                    let path = format!("/api/v1/statuses/{}/context", s.id);
                    let (ctx, r, _): (Context, _, _) = self.read(&path, &[], now).await?;
                    rate = r;
                    thread.extend(ctx.ancestors.into_iter().rev().map(|a| a.id));
                }
            }
            posts.push(Post {
                remote_id: s.id.clone(),
                thread,
                root_ref: None,
                author_id: s.account.id.clone(),
                handle: s.account.acct.clone(),
                name: bounded(&s.account.display_name),
                text: html_to_text(&s.content),
                url: safe_link(s.url.as_deref().or(s.uri.as_deref())),
                posted_at: s.created_at,
            });
        }
        Ok(Page {
            more: cursor.is_some() && notes.len() >= PAGE,
            posts,
            cursor: next,
            rate,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prev_link_gives_the_next_min_id() {
        let link = "<https://social.test/api/v1/notifications?max_id=100&types%5B%5D=mention>; rel=\"next\", \
                    <https://social.test/api/v1/notifications?min_id=142&types%5B%5D=mention>; rel=\"prev\"";
        assert_eq!(prev_min_id(link).as_deref(), Some("142"));
        assert_eq!(
            prev_min_id("<https://x.test/?max_id=1>; rel=\"next\""),
            None
        );
        assert_eq!(newer("99", "100"), "100");
    }
}
