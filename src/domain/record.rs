//! The public promise record: how well the team kept its word, computed from what was stored
//! (the updates with their "next update by" promises, the estimate revisions, the first alert)
//! and never typed by hand. Pure: takes `now`, does no I/O.
//!
//! - A **promise** is an update's "next update by" time. It is *kept* when the incident's next
//!   update (of any kind) was posted at or before that time, *late* when it came after (by how
//!   much is kept; the late ones Candor's automatic holding update answered are counted apart),
//!   *overdue* when nothing came and the time has passed (late so far), *pending* otherwise.
//! - An **estimate** is each stated estimate of the fix (every revision that set one). It was
//!   *missed* when its time passed while it stood and the incident was open, *revised* when a
//!   new estimate replaced it before its time, *met* when the incident was resolved by it while
//!   it stood, *pending* while it stands in the future.
//! - The **first estimate's error** is the resolution time minus the first estimate (positive:
//!   fixed later than first said), for resolved incidents that had one.
//! - **Alert to first post** is from the first alert's start (Alertmanager's `startsAt`) of the
//!   incident's alert groups to its first public update; zero when the post came first.
//! - **Customers who wrote** are the inbox's conversations (one per customer, incident and
//!   network) about the period's incidents: the share a person answered, the median time from
//!   the customer's first post to that answer, and how many of those answered about a resolved
//!   incident were told in their thread that it was fixed.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::text::human_duration;

/// Days the record looks back.
pub const RECORD_DAYS: i64 = 90;

/// One public update, as the record needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Said {
    pub at: DateTime<Utc>,
    /// The "next update by" time it promised, if any.
    pub next_update_by: Option<DateTime<Utc>>,
    /// Candor's own holding update (nobody wrote in time).
    pub holding: bool,
}

/// One incident's stored facts, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub started_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub updates: Vec<Said>,
    /// Each estimate revision: when it was made and the estimate it set (`None`: withdrawn).
    pub estimates: Vec<(DateTime<Utc>, Option<DateTime<Utc>>)>,
    /// The earliest start of the alerts that opened or joined it.
    pub first_alert_at: Option<DateTime<Utc>>,
}

/// "Next update by" promises.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Promises {
    /// Promises whose time has come (kept + late); pending ones are not counted.
    pub due: u32,
    /// The next update came at or before the promised time.
    pub kept: u32,
    /// The next update came after the promised time, or has not come and the time has passed.
    pub late: u32,
    /// Of the late ones, those Candor's automatic holding update answered (nobody wrote).
    pub late_held: u32,
    /// Of the late ones, those still unanswered.
    pub overdue: u32,
    /// Promises whose time has not come.
    pub pending: u32,
    /// Median lateness of the late ones, in seconds.
    pub late_median_seconds: Option<i64>,
    /// The latest one, in seconds.
    pub late_max_seconds: Option<i64>,
    /// kept ÷ due, 0 to 1; none when nothing was due.
    pub share_kept: Option<f64>,
    #[serde(skip)]
    lateness: Vec<i64>,
}

/// Estimates of the fix, counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct EstimateCounts {
    pub given: u32,
    pub met: u32,
    pub revised: u32,
    pub missed: u32,
    pub pending: u32,
}

/// The record of one incident.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct IncidentRecord {
    pub promises: Promises,
    pub estimates: EstimateCounts,
    pub first_estimate: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// Resolution minus first estimate, in seconds (positive: fixed later than first said).
    pub first_estimate_error_seconds: Option<i64>,
    pub first_alert_at: Option<DateTime<Utc>>,
    pub first_post_at: Option<DateTime<Utc>>,
    pub alert_to_post_seconds: Option<i64>,
}

/// The record over the last [`RECORD_DAYS`] days.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Record {
    pub days: i64,
    /// Incidents started in the period (maintenance windows are not counted).
    pub incidents: u32,
    pub promises: Promises,
    pub estimates: EstimateCounts,
    /// Resolved incidents that had a first estimate.
    pub first_estimates_judged: u32,
    /// Median of their first estimates' errors, in seconds (positive: fixed later than said).
    pub first_estimate_error_median_seconds: Option<i64>,
    /// Incidents with an alert.
    pub alerted_incidents: u32,
    /// Median time from the first alert to the first public post, in seconds.
    pub alert_to_post_median_seconds: Option<i64>,
    /// Customers who wrote to us on social networks about the period's incidents (the inbox).
    pub conversations: Conversations,
}

/// One customer's conversation in the inbox, as the record needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    pub first_at: DateTime<Utc>,
    pub answered_at: Option<DateTime<Utc>>,
    pub fixed_told_at: Option<DateTime<Utc>>,
    pub incident_resolved: bool,
}

/// How the team answered the customers who wrote in.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Conversations {
    /// Conversations (one per customer, incident and network).
    pub conversations: u32,
    /// Answered by a person in the customer's thread.
    pub answered: u32,
    /// `answered / conversations` (null when nobody wrote).
    pub share_answered: Option<f64>,
    /// Median time from a customer's first post to the team's first answer, in seconds.
    pub first_answer_median_seconds: Option<i64>,
    /// Answered conversations about incidents since resolved.
    pub closable: u32,
    /// Of those, the ones told in their thread that it was fixed.
    pub closed: u32,
    /// `closed / closable` (null when none).
    pub share_closed: Option<f64>,
}

/// The inbox's part of the record, from its conversations.
pub fn conversations(list: &[Conversation]) -> Conversations {
    let answered: Vec<i64> = list
        .iter()
        .filter_map(|c| c.answered_at.map(|a| (a - c.first_at).num_seconds().max(0)))
        .collect();
    let closable = list
        .iter()
        .filter(|c| c.answered_at.is_some() && c.incident_resolved)
        .count() as u32;
    let closed = list
        .iter()
        .filter(|c| c.answered_at.is_some() && c.incident_resolved && c.fixed_told_at.is_some())
        .count() as u32;
    let share = |n: u32, of: u32| (of > 0).then(|| f64::from(n) / f64::from(of));
    Conversations {
        conversations: list.len() as u32,
        answered: answered.len() as u32,
        share_answered: share(answered.len() as u32, list.len() as u32),
        first_answer_median_seconds: median(&answered),
        closable,
        closed,
        share_closed: share(closed, closable),
    }
}

/// The median of whole seconds (the lower-middle and upper-middle averaged, rounded down).
pub fn median(values: &[i64]) -> Option<i64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_unstable();
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]).div_euclid(2)
    })
}

impl Promises {
    fn add_late(&mut self, seconds: i64) {
        self.late += 1;
        self.lateness.push(seconds);
    }

    fn finish(mut self) -> Self {
        self.due = self.kept + self.late;
        self.late_median_seconds = median(&self.lateness);
        self.late_max_seconds = self.lateness.iter().copied().max();
        self.share_kept = (self.due > 0).then(|| f64::from(self.kept) / f64::from(self.due));
        self
    }

    fn merge(&mut self, o: &Promises) {
        self.kept += o.kept;
        self.late += o.late;
        self.late_held += o.late_held;
        self.overdue += o.overdue;
        self.pending += o.pending;
        self.lateness.extend_from_slice(&o.lateness);
    }
}

fn promises(f: &Facts, now: DateTime<Utc>) -> Promises {
    let mut p = Promises::default();
    for (i, u) in f.updates.iter().enumerate() {
        let Some(by) = u.next_update_by else { continue };
        match f.updates.get(i + 1) {
            Some(next) if next.at <= by => p.kept += 1,
            Some(next) => {
                p.add_late((next.at - by).num_seconds());
                if next.holding {
                    p.late_held += 1;
                }
            }
            // Resolved without a later update: nothing more was owed.
            None if f.resolved_at.is_some() => {}
            None if now > by => {
                p.add_late((now - by).num_seconds());
                p.overdue += 1;
            }
            None => p.pending += 1,
        }
    }
    p.finish()
}

fn estimates(f: &Facts, now: DateTime<Utc>) -> EstimateCounts {
    let mut e = EstimateCounts::default();
    for (i, (_, eta)) in f.estimates.iter().enumerate() {
        let Some(eta) = *eta else { continue };
        e.given += 1;
        let replaced = f.estimates.get(i + 1).map(|(at, _)| *at);
        let end = match (replaced, f.resolved_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        match end {
            _ if eta < now && end.is_none_or(|end| eta < end) => e.missed += 1,
            Some(end) if f.resolved_at == Some(end) && replaced.is_none_or(|r| r > end) => {
                e.met += 1
            }
            Some(_) => e.revised += 1,
            None => e.pending += 1,
        }
    }
    e
}

/// The record of one incident at `now`.
pub fn incident(f: &Facts, now: DateTime<Utc>) -> IncidentRecord {
    let first_estimate = f.estimates.iter().find_map(|(_, eta)| *eta);
    let first_post_at = f.updates.first().map(|u| u.at);
    let alert_to_post_seconds = match (f.first_alert_at, first_post_at) {
        (Some(a), Some(p)) => Some((p - a).num_seconds().max(0)),
        _ => None,
    };
    IncidentRecord {
        promises: promises(f, now),
        estimates: estimates(f, now),
        first_estimate,
        resolved_at: f.resolved_at,
        first_estimate_error_seconds: first_estimate
            .zip(f.resolved_at)
            .map(|(eta, r)| (r - eta).num_seconds()),
        first_alert_at: f.first_alert_at,
        first_post_at,
        alert_to_post_seconds,
    }
}

/// The record over the incidents started in the last [`RECORD_DAYS`] days before `now`.
pub fn record<'a>(incidents: impl IntoIterator<Item = &'a Facts>, now: DateTime<Utc>) -> Record {
    let since = now - Duration::days(RECORD_DAYS);
    let mut r = Record {
        days: RECORD_DAYS,
        ..Record::default()
    };
    let mut promises = Promises::default();
    let (mut errors, mut alert_to_post) = (Vec::new(), Vec::new());
    for f in incidents.into_iter().filter(|f| f.started_at >= since) {
        let one = incident(f, now);
        r.incidents += 1;
        promises.merge(&one.promises);
        let e = &one.estimates;
        r.estimates.given += e.given;
        r.estimates.met += e.met;
        r.estimates.revised += e.revised;
        r.estimates.missed += e.missed;
        r.estimates.pending += e.pending;
        errors.extend(one.first_estimate_error_seconds);
        alert_to_post.extend(one.alert_to_post_seconds);
    }
    r.promises = promises.finish();
    r.first_estimates_judged = errors.len() as u32;
    r.first_estimate_error_median_seconds = median(&errors);
    r.alerted_incidents = alert_to_post.len() as u32;
    r.alert_to_post_median_seconds = median(&alert_to_post);
    r
}

/// "4 minutes late", "12 minutes early", "on time" for a signed error in seconds.
pub fn error_words(seconds: i64) -> String {
    let d = human_duration(Duration::seconds(seconds.abs()));
    match seconds {
        0 => "exactly on time".into(),
        s if s > 0 => format!("{d} later than first said"),
        _ => format!("{d} earlier than first said"),
    }
}

/// One line of the record on the status page: the figure and one sentence saying what it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Line {
    pub label: &'static str,
    pub figure: String,
    pub explanation: String,
}

/// The record in words, one line per figure.
pub fn lines(r: &Record) -> Vec<Line> {
    let p = &r.promises;
    let kept = match p.share_kept {
        Some(s) => format!("{}% ({} of {})", (s * 100.0).round(), p.kept, p.due),
        None => "no promises due yet".into(),
    };
    let late = match (p.late, p.late_median_seconds) {
        (0, _) | (_, None) => "None of them came late.".to_string(),
        (n, Some(m)) => format!(
            "{n} came late, by {} at the median{}.",
            human_duration(Duration::seconds(m)),
            if p.late_held > 0 {
                format!(
                    "; {} of those were Candor's automatic \"no news yet\" update",
                    p.late_held
                )
            } else {
                String::new()
            }
        ),
    };
    let e = &r.estimates;
    let error = match r.first_estimate_error_median_seconds {
        Some(s) => error_words(s),
        None => "no resolved incident had an estimate".into(),
    };
    let alert = match r.alert_to_post_median_seconds {
        Some(s) => human_duration(Duration::seconds(s)),
        None => "no alerted incidents".into(),
    };
    vec![
        Line {
            label: "Updates on time",
            figure: kept,
            explanation: format!(
                "Every update says when the next one will come; this is how often the next one came by then. {late}"
            ),
        },
        Line {
            label: "Estimates of the fix",
            figure: format!(
                "{} given: {} met, {} revised in time, {} missed",
                e.given, e.met, e.revised, e.missed
            ),
            explanation: "An estimate is met when the incident was resolved by it, revised when we gave a new one before it passed, and missed when it passed with the incident still open.".into(),
        },
        Line {
            label: "First estimates",
            figure: error,
            explanation: match r.first_estimates_judged {
                0 => "The median difference between when we first said the fix would come and when it came; no resolved incident had an estimate yet.".into(),
                n => format!(
                    "The median difference between when we first said the fix would come and when it came, over {} resolved incident{} that had an estimate.",
                    n,
                    if n == 1 { "" } else { "s" }
                ),
            },
        },
        Line {
            label: "Alert to first post",
            figure: alert,
            explanation: match r.alerted_incidents {
                0 => "The median time from our monitoring's first alert to our first post here; none of these incidents came from an alert.".into(),
                n => format!(
                    "The median time from our monitoring's first alert to our first post here, over {} incident{} our alerts opened or joined.",
                    n,
                    if n == 1 { "" } else { "s" }
                ),
            },
        },
        conversation_line(&r.conversations),
    ]
}

fn conversation_line(c: &Conversations) -> Line {
    let label = "Customers who wrote to us";
    let Some(share) = c.share_answered else {
        return Line {
            label,
            figure: "nobody wrote to us about these incidents".into(),
            explanation: "Replies and mentions on social networks about these incidents; a person answers each in the customer's own thread.".into(),
        };
    };
    let wait = match c.first_answer_median_seconds {
        Some(s) => format!(
            " The median first answer came {} after they wrote.",
            human_duration(Duration::seconds(s))
        ),
        None => String::new(),
    };
    let told = match c.closable {
        0 => String::new(),
        n => format!(
            " {} of the {n} we answered about an incident since fixed {} told in their thread that it was fixed.",
            c.closed,
            if c.closed == 1 { "was" } else { "were" }
        ),
    };
    Line {
        label,
        figure: format!(
            "{}% answered ({} of {})",
            (share * 100.0).round(),
            c.answered,
            c.conversations
        ),
        explanation: format!(
            "Replies and mentions on social networks about these incidents, answered by a person in the customer's own thread.{wait}{told}"
        ),
    }
}

#[cfg(test)]
#[path = "record_tests.rs"]
mod tests;
