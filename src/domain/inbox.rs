//! The inbox's decisions, as pure functions: what an inbound post says (as plain text), which
//! incident it is about, when a network may be asked again, what a reply counts as, and the
//! words Candor suggests and sends.
//!
//! Inbound text is untrusted: it is kept as plain text (Mastodon's HTML is reduced to its
//! words here), bounded, and only `http(s)` links are ever shown as links.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use unicode_segmentation::UnicodeSegmentation;

/// The most characters of one inbound post kept.
pub const MAX_TEXT: usize = 2000;

/// The words of Mastodon's (sanitised) status HTML: tags dropped, `<br>` and paragraph ends as
/// line breaks, entities decoded. The result is plain text, to be escaped wherever shown.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        out.push_str(&decode_entities(&rest[..lt]));
        let Some(gt) = rest[lt..].find('>') else {
            rest = "";
            break;
        };
        let tag = rest[lt + 1..lt + gt].trim().to_ascii_lowercase();
        let name = tag
            .trim_start_matches('/')
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap_or("");
        if name == "br" || (tag.starts_with('/') && name == "p") {
            out.push('\n');
        }
        rest = &rest[lt + gt + 1..];
    }
    out.push_str(&decode_entities(rest));
    bounded(out.trim())
}

fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let end = after.find(';').filter(|e| *e <= 10);
        let decoded = end.and_then(|e| {
            let name = &after[..e];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some(' '),
                _ => name
                    .strip_prefix("#x")
                    .or_else(|| name.strip_prefix("#X"))
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            }?;
            Some((c, e))
        });
        match decoded {
            Some((c, e)) => {
                out.push(c);
                rest = &after[e + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// At most [`MAX_TEXT`] characters of `text`, with "…" where it was cut.
pub fn bounded(text: &str) -> String {
    if text.chars().count() <= MAX_TEXT {
        return text.to_string();
    }
    let mut t: String = text.chars().take(MAX_TEXT - 1).collect();
    t.push('…');
    t
}

/// `url` if it is an absolute `http` or `https` URL, else `None` (never a `javascript:` or
/// `data:` link from a remote server).
pub fn safe_link(url: Option<&str>) -> Option<String> {
    let u = url::Url::parse(url?.trim()).ok()?;
    matches!(u.scheme(), "http" | "https").then(|| u.to_string())
}

/// An inbound post, as far as deciding its incident goes.
#[derive(Debug, Clone)]
pub struct Inbound<'a> {
    /// Remote ids of the posts it answers, nearest first (Mastodon: its parent and the
    /// context's ancestors; Bluesky: the reply's parent and root, as at-uris).
    pub thread: &'a [String],
    pub posted_at: DateTime<Utc>,
}

/// Which incident an inbound post belongs to: the incident one of whose posts (or of Candor's
/// replies) it answers, if that incident is open; else, when it answers none of them (a bare
/// mention, or a reply in someone else's thread), the most recently started open incident that
/// had started when it was written. `known` maps remote ids of Candor's posts to incidents;
/// `open` lists open incidents with their start.
pub fn incident_of(
    post: &Inbound<'_>,
    known: &HashMap<String, i64>,
    open: &[(i64, DateTime<Utc>)],
) -> Option<i64> {
    if let Some(incident) = post.thread.iter().find_map(|r| known.get(r)) {
        return open
            .iter()
            .any(|(id, _)| id == incident)
            .then_some(*incident);
    }
    open.iter()
        .filter(|(_, started)| *started <= post.posted_at)
        .max_by_key(|(id, started)| (*started, *id))
        .map(|(id, _)| *id)
}

/// What a network's rate-limit headers said on its last answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rate {
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
    pub reset: Option<DateTime<Utc>>,
}

impl Rate {
    /// When polling may go on: `None` while a tenth of the window's budget (at least 1) is
    /// left, so posting updates and replies on the same account always has room; else when
    /// the window resets.
    pub fn hold_until(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let remaining = self.remaining?;
        let reserve = self.limit.map(|l| (l / 10).max(1)).unwrap_or(1);
        (remaining <= reserve).then(|| self.reset.filter(|r| *r > now).unwrap_or(now))
    }
}

/// The pause before polling a channel again after `failures` failures in a row: the poll
/// interval doubled per failure, at most an hour (or the interval, if that is longer).
pub fn failure_backoff(poll_every: std::time::Duration, failures: u32) -> std::time::Duration {
    let hour = std::time::Duration::from_secs(3600);
    let n = failures.min(16);
    poll_every
        .saturating_mul(1u32 << n)
        .min(hour.max(poll_every))
}

/// A reply's length as Mastodon counts it: graphemes, each `http(s)` link as `url_chars`, a
/// mention `@user@domain` as `@user`. `mention` is prefixed as `@acct `.
pub fn mastodon_length(mention: &str, text: &str, url_chars: usize) -> usize {
    let local = mention.split('@').find(|s| !s.is_empty()).unwrap_or("");
    let prefix = if mention.is_empty() {
        0
    } else {
        local.graphemes(true).count() + 2
    };
    prefix + crate::channels::fit::Counter::GraphemesShortLinks { url: url_chars }.count(text)
}

/// The text of a Mastodon reply: the customer's handle first (so they are told), then the
/// words, unless the words already begin with it.
pub fn mastodon_reply_text(mention: &str, text: &str) -> String {
    let at = format!("@{}", mention.trim_start_matches('@'));
    if mention.is_empty() || text.trim_start().starts_with(&at) {
        text.to_string()
    } else {
        format!("{at} {text}")
    }
}

/// First lines the console suggests for an answer: each acknowledges what the customer went
/// through and apologises before anything else, and none defends.
pub fn suggested_openings(site: &str, title: &str) -> Vec<String> {
    vec![
        format!("You're right, and we're sorry: {title} is our fault, not yours."),
        format!("Thank you for telling us, and sorry for the trouble. We're working on {title} now."),
        format!("Sorry, that's frustrating. The {site} team is on it and will tell you here when it's fixed."),
    ]
}

/// The one reply that closes the loop when the incident resolves.
pub fn fixed_reply(title: &str, url: &str) -> String {
    format!(
        "It's fixed: {title} is resolved. Thank you for telling us, and sorry again for the \
         trouble. {url}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn mastodon_html_becomes_plain_words() {
        let html = r#"<p><span class="h-card"><a href="https://x.test/@acme" class="u-url mention">@<span>acme</span></a></span> still broken &amp; <b>slow</b> in Frankfurt &lt;script&gt;</p><p>line&#39;2<br />end&#x21;</p>"#;
        assert_eq!(
            html_to_text(html),
            "@acme still broken & slow in Frankfurt <script>\nline'2\nend!"
        );
        assert_eq!(html_to_text("a &bogus; & b"), "a &bogus; & b");
        assert_eq!(html_to_text(&"x".repeat(5000)).chars().count(), MAX_TEXT);
    }

    #[test]
    fn only_http_links_are_links() {
        assert_eq!(
            safe_link(Some("https://bsky.app/x")).as_deref(),
            Some("https://bsky.app/x")
        );
        assert_eq!(safe_link(Some("javascript:alert(1)")), None);
        assert_eq!(safe_link(Some("data:text/html,hi")), None);
        assert_eq!(safe_link(None), None);
    }

    #[test]
    fn replies_go_to_their_thread_and_mentions_to_the_latest_open_incident() {
        let t = |m| Utc.with_ymd_and_hms(2026, 11, 23, 12, m, 0).unwrap();
        let known = HashMap::from([("100".to_string(), 1), ("200".to_string(), 2)]);
        let open = [(1, t(0)), (2, t(10))];
        let reply = ["999".to_string(), "100".to_string()];
        let post = Inbound {
            thread: &reply,
            posted_at: t(20),
        };
        assert_eq!(incident_of(&post, &known, &open), Some(1));
        let bare = Inbound {
            thread: &[],
            posted_at: t(20),
        };
        assert_eq!(incident_of(&bare, &known, &open), Some(2));
        let early = Inbound {
            thread: &[],
            posted_at: t(5),
        };
        assert_eq!(incident_of(&early, &known, &open), Some(1));
        // A reply to a resolved incident's post is not filed under another one.
        assert_eq!(incident_of(&post, &known, &[(2, t(10))]), None);
    }

    #[test]
    fn polling_leaves_a_tenth_of_the_budget() {
        let now = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap();
        let reset = now + chrono::Duration::minutes(3);
        let rate = |remaining| Rate {
            limit: Some(300),
            remaining: Some(remaining),
            reset: Some(reset),
        };
        assert_eq!(rate(31).hold_until(now), None);
        assert_eq!(rate(30).hold_until(now), Some(reset));
        assert_eq!(Rate::default().hold_until(now), None);
    }

    #[test]
    fn mastodon_counts_a_mention_by_its_local_part() {
        assert_eq!(
            mastodon_length("ann@far.example", "hi", 23),
            "@ann hi".len()
        );
        assert_eq!(
            mastodon_reply_text("ann@far.example", "hi"),
            "@ann@far.example hi"
        );
        assert_eq!(mastodon_reply_text("ann", "@ann hi"), "@ann hi");
    }

    #[test]
    fn suggestions_apologise_first_and_never_defend() {
        for s in suggested_openings("Acme", "API errors") {
            let first = s.to_lowercase();
            assert!(first.contains("sorry"), "{s}");
            for defensive in ["actually", "only a few", "as expected", "not our"] {
                assert!(!first.contains(defensive), "{s}");
            }
        }
    }
}
