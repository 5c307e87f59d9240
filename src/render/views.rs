//! Presentation helpers shared by the public pages and the console: how a time, a span and a
//! component's status are written, and what every page's layout needs.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use serde_json::{json, Value};

use crate::config::Config;
use crate::domain::text::{format_time, human_span, Dating};
use crate::domain::ComponentStatus;

/// A time as the templates show it.
#[derive(Debug, Clone, Serialize)]
pub struct TimeView {
    /// RFC 3339, for `<time datetime>`.
    pub iso: String,
    /// As the document's dating asks: "14:30 UTC today" or "Tue 24 Nov, 14:30 UTC".
    pub text: String,
    /// Always with the day: "Tue 24 Nov, 14:30 UTC".
    pub long: String,
}

/// A stretch of time (a maintenance window) as the templates show it.
#[derive(Debug, Clone, Serialize)]
pub struct SpanView {
    /// RFC 3339 start and end, for `<time datetime data-end>`.
    pub iso: String,
    pub end_iso: String,
    /// "Thu 5 Dec, 02:00–04:00 UTC".
    pub text: String,
}

/// How one document words its times: in the site's zone, relative to `now` ("today") when
/// the document is rendered again as the clock moves, always dated when it is kept.
#[derive(Debug, Clone, Copy)]
pub struct Times {
    pub now: DateTime<Utc>,
    pub tz: Tz,
    pub dating: Dating,
}

impl Times {
    /// For documents rebuilt at least once a minute (the cached page, the console).
    pub fn live(now: DateTime<Utc>, tz: Tz) -> Self {
        Self {
            now,
            tz,
            dating: Dating::Relative,
        }
    }

    /// For documents kept until the next change, however long that is.
    pub fn kept(now: DateTime<Utc>, tz: Tz) -> Self {
        Self {
            now,
            tz,
            dating: Dating::Always,
        }
    }

    pub fn at(&self, t: DateTime<Utc>) -> TimeView {
        TimeView {
            iso: t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            text: format_time(t, self.now, self.tz, self.dating),
            long: format_time(t, self.now, self.tz, Dating::Always),
        }
    }

    pub fn span(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> SpanView {
        SpanView {
            iso: start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            end_iso: end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            text: human_span(start, end, self.now, self.tz, self.dating),
        }
    }
}

/// A time for a live document (the console), in the site's zone.
pub fn time(t: DateTime<Utc>, now: DateTime<Utc>, tz: Tz) -> TimeView {
    Times::live(now, tz).at(t)
}

pub fn component_label(s: ComponentStatus) -> &'static str {
    match s {
        ComponentStatus::Operational => "Operational",
        ComponentStatus::DegradedPerformance => "Degraded performance",
        ComponentStatus::PartialOutage => "Partial outage",
        ComponentStatus::MajorOutage => "Major outage",
        ComponentStatus::UnderMaintenance => "Under maintenance",
    }
}

/// What every page's layout needs.
pub fn site_view(config: &Config) -> Value {
    let s = &config.site;
    let contact = s.support_contact.trim();
    let href = if contact.contains('@') && !contact.contains("://") {
        format!("mailto:{contact}")
    } else {
        contact.to_string()
    };
    json!({
        "name": s.name,
        "url": s.public_url.as_str(),
        "logo_url": s.logo_url,
        "support_contact": contact,
        "support_href": href,
        "accent": s.colours.accent,
        "on_accent": s.colours.on_accent,
        "zone": s.time_zone.name(),
        "footer_links": s.footer_links.iter().map(|l| json!({ "label": l.label, "url": l.url })).collect::<Vec<_>>(),
        // With mirrors, the pages' script (`heartbeat.js`) shows a banner on a copy whose
        // heartbeat is older than this many seconds.
        "heartbeat_after": (!config.mirrors.targets.is_empty()).then_some(config.mirrors.stale_after.as_secs()),
    })
}

/// An audit log actor as people say it: `operator:ana@acme.test` → "ana@acme.test",
/// `token:deploy` → "deploy (API token)", `cli:alice` → "alice (command line)", `candor` →
/// "Candor (scheduler)", `public` → "the public site", `anonymous` → "someone signing in".
pub fn actor_name(actor: &str) -> String {
    match actor.split_once(':') {
        Some(("operator", email)) => email.to_string(),
        Some(("token", name)) => format!("{name} (API token)"),
        Some(("cli", user)) => format!("{user} (command line)"),
        _ => match actor {
            "candor" => "Candor (scheduler)".into(),
            "public" => "the public site".into(),
            "anonymous" => "someone signing in".into(),
            other => other.to_string(),
        },
    }
}

#[cfg(test)]
mod actor_tests {
    #[test]
    fn actors_read_as_people_say_them() {
        use super::actor_name;
        assert_eq!(actor_name("operator:ana@acme.test"), "ana@acme.test");
        assert_eq!(actor_name("token:deploy"), "deploy (API token)");
        assert_eq!(actor_name("cli:alice"), "alice (command line)");
        assert_eq!(actor_name("candor"), "Candor (scheduler)");
        assert_eq!(actor_name("anonymous"), "someone signing in");
    }
}
