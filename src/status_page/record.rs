//! The promise record as the pages show it: the 90 days' figures with one sentence each on the
//! status page, and one incident's own record on its page; and a published postmortem with
//! its action items (rendered Markdown, sanitised; overdue items marked). Pure: the figures come from
//! `domain::record`, the words of times from `render::views`.

use chrono::Duration;
use serde_json::{json, Value};

use super::snapshot::Story;
use crate::domain::record::{self, Record};
use crate::domain::text::human_duration;
use crate::render::views::Times;

fn plural(n: u32, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// The status page's record section.
pub fn page_view(r: &Record) -> Value {
    json!({
        "days": r.days,
        "incidents": r.incidents,
        "lines": record::lines(r),
    })
}

/// One incident's record: "3 updates promised, 3 kept on time", "First estimate 14:00, fixed
/// 14:40", and the time from its first alert to its first post. None for maintenance windows.
pub fn incident_view(s: &Story, times: &Times) -> Option<Value> {
    if s.incident.is_maintenance() {
        return None;
    }
    let r = s.record(times.now);
    let p = &r.promises;
    let mut promises = if p.due == 0 {
        "No update was due yet".to_string()
    } else if p.late == 0 {
        format!(
            "{} promised, {} kept on time",
            plural(p.due, "update", "updates"),
            p.kept
        )
    } else {
        let latest = human_duration(Duration::seconds(p.late_max_seconds.unwrap_or(0)));
        let mut s = format!(
            "{} promised, {} kept on time, {} late (the latest by {latest})",
            plural(p.due, "update", "updates"),
            p.kept,
            p.late
        );
        if p.overdue > 0 {
            s.push_str(&format!(", {} still owed", p.overdue));
        }
        s
    };
    if p.pending > 0 {
        promises.push_str("; the next is not due yet");
    }
    let e = &r.estimates;
    let estimates = (e.given > 0).then(|| {
        format!(
            "{} given: {} met, {} revised in time, {} missed",
            plural(e.given, "estimate", "estimates"),
            e.met,
            e.revised,
            e.missed
        )
    });
    let alert = r.alert_to_post_seconds.map(|s| {
        json!({
            "alert": r.first_alert_at.map(|t| times.at(t)),
            "post": r.first_post_at.map(|t| times.at(t)),
            "after": human_duration(Duration::seconds(s)),
        })
    });
    Some(json!({
        "promises": promises,
        "estimates": estimates,
        "first_estimate": r.first_estimate.map(|t| times.at(t)),
        "fixed": r.resolved_at.map(|t| times.at(t)),
        "error": r.first_estimate_error_seconds.map(record::error_words),
        "alert": alert,
    }))
}

/// A published postmortem: its sanitised HTML and its action items, overdue ones marked.
pub fn postmortem_view(
    p: &crate::store::postmortems::Postmortem,
    config: &crate::config::Config,
    times: &Times,
) -> Value {
    use crate::domain::postmortem::{overdue, render};
    let tz = config.site.time_zone;
    let actions: Vec<Value> = p
        .actions
        .iter()
        .map(|a| {
            json!({
                "text": a.text,
                "owner": a.owner,
                "due": crate::domain::text::human_date(a.due_on),
                "due_iso": a.due_on.format("%Y-%m-%d").to_string(),
                "done": a.done_at.map(|t| times.at(t)),
                "overdue": overdue(a.due_on, a.done_at.is_some(), times.now, tz),
            })
        })
        .collect();
    json!({
        "html": render(&p.body),
        "published": p.published_at.map(|t| times.at(t)),
        "updated": p
            .published_at
            .is_some_and(|pt| p.updated_at > pt)
            .then(|| times.at(p.updated_at)),
        "actions": actions,
    })
}
