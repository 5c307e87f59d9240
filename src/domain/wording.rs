//! What Candor knows when it speaks on its own. A holding update, an apology or an overrun
//! notice is composed (by the templates under `templates/messages/`) from these facts: what
//! changed since Candor last spoke, the team's last words and how long ago they came, how many
//! estimates have passed, and the message's place in the incident (`seq`), which picks the
//! phrasing. Pure: the caller reads the incident's updates and revisions and passes them in.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::text::{human_duration, human_time};
use super::{ComponentStatus, IncidentStatus, UpdateKind};

/// One earlier update, as the facts need it.
#[derive(Debug, Clone, PartialEq)]
pub struct Said {
    pub kind: UpdateKind,
    /// Written by Candor itself (the scheduler), not by a person or a script.
    pub automatic: bool,
    pub at: DateTime<Utc>,
    pub message: String,
    pub status: IncidentStatus,
    pub components: BTreeMap<String, ComponentStatus>,
    pub eta_at: Option<DateTime<Utc>>,
}

/// One move of the estimate, with the reason given for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Moved {
    pub at: DateTime<Utc>,
    pub old: Option<DateTime<Utc>>,
    pub new: Option<DateTime<Utc>>,
    pub reason: Option<String>,
}

/// The incident as it stands now.
#[derive(Debug, Clone, PartialEq)]
pub struct Now<'a> {
    pub at: DateTime<Utc>,
    pub started_at: DateTime<Utc>,
    pub status: IncidentStatus,
    pub components: &'a BTreeMap<String, ComponentStatus>,
    pub eta_at: Option<DateTime<Utc>>,
    pub tz: Tz,
}

/// One thing that changed since Candor last spoke (or since the first update).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "what", rename_all = "snake_case")]
pub enum Change {
    /// The incident moved from one status to another (`identified`, ...).
    Status { from: String, to: String },
    /// A component's status changed; `from`/`to` are lower-case labels ("partial outage",
    /// "operational"). `name` is the component's id until the caller names it.
    Component {
        name: String,
        from: String,
        to: String,
    },
    /// The estimate moved: `later`, `earlier`, `first` (there was none) or `withdrawn`.
    Estimate {
        direction: &'static str,
        from: Option<String>,
        to: Option<String>,
        /// Why, as the team said it: a clause with no final full stop.
        reason: Option<String>,
    },
}

/// The facts of one automatic message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Known {
    /// Automatic messages already posted in this incident (0 for the first).
    pub seq: usize,
    /// "1 hour 5 minutes" since the incident began.
    pub elapsed: String,
    /// What changed since the last automatic message (or since the first update).
    pub changes: Vec<Change>,
    /// Whether `changes` are counted from an earlier automatic message.
    pub since_automatic: bool,
    /// The last words a person (or script) wrote, if any.
    pub team_words: Option<String>,
    /// When those words came (the start when nobody wrote), as a time and as a duration ago.
    pub quiet_since: String,
    pub quiet_for: String,
    /// Automatic messages in a row since the team last wrote, this one included.
    pub in_a_row: usize,
    /// Estimates that had already passed before this message (apologies posted).
    pub missed: usize,
    /// The reason given when the current estimate was set, if any.
    pub eta_reason: Option<String>,
}

/// A reason as a clause: no final full stop, and a lower-case first letter unless the first
/// word is an acronym ("The restore is slow." → "the restore is slow"; "DNS broke" stays).
pub fn clause(reason: &str) -> String {
    let t = reason.trim().trim_end_matches(['.', '!', ';', ',']).trim();
    let mut chars = t.chars();
    match (chars.next(), chars.next()) {
        (Some(a), Some(b)) if a.is_uppercase() && !b.is_uppercase() => {
            a.to_lowercase().chain(t[a.len_utf8()..].chars()).collect()
        }
        _ => t.to_string(),
    }
}

/// "first", "second", ... "twentieth"; beyond that "21st" and so on.
pub fn ordinal(n: usize) -> String {
    const WORDS: [&str; 20] = [
        "first",
        "second",
        "third",
        "fourth",
        "fifth",
        "sixth",
        "seventh",
        "eighth",
        "ninth",
        "tenth",
        "eleventh",
        "twelfth",
        "thirteenth",
        "fourteenth",
        "fifteenth",
        "sixteenth",
        "seventeenth",
        "eighteenth",
        "nineteenth",
        "twentieth",
    ];
    match n {
        1..=20 => WORDS[n - 1].to_string(),
        _ => {
            let suffix = match (n % 10, n % 100) {
                (_, 11..=13) => "th",
                (1, _) => "st",
                (2, _) => "nd",
                (3, _) => "rd",
                _ => "th",
            };
            format!("{n}{suffix}")
        }
    }
}

fn label(s: ComponentStatus) -> String {
    s.as_str().replace('_', " ")
}

/// What changed between `then` and `now`: status, each component, the estimate (with the
/// reason of the latest move after `then`).
pub fn changes(then: &Said, now: &Now<'_>, moves: &[Moved]) -> Vec<Change> {
    let mut out = Vec::new();
    if then.status != now.status {
        out.push(Change::Status {
            from: then.status.as_str().replace('_', " "),
            to: now.status.as_str().replace('_', " "),
        });
    }
    let ids: std::collections::BTreeSet<&String> = then
        .components
        .keys()
        .chain(now.components.keys())
        .collect();
    for id in ids {
        let get = |m: &BTreeMap<String, ComponentStatus>| {
            m.get(id).copied().unwrap_or(ComponentStatus::Operational)
        };
        let (from, to) = (get(&then.components), get(now.components));
        if from != to {
            out.push(Change::Component {
                name: id.clone(),
                from: label(from),
                to: label(to),
            });
        }
    }
    if then.eta_at != now.eta_at {
        let direction = match (then.eta_at, now.eta_at) {
            (None, _) => "first",
            (Some(_), None) => "withdrawn",
            (Some(a), Some(b)) if b > a => "later",
            _ => "earlier",
        };
        let reason = moves
            .iter()
            .rev()
            .find(|m| m.at > then.at && m.new == now.eta_at)
            .and_then(|m| m.reason.as_deref())
            .map(clause);
        let text = |t: Option<DateTime<Utc>>| t.map(|t| human_time(t, now.at, now.tz));
        out.push(Change::Estimate {
            direction,
            from: text(then.eta_at),
            to: text(now.eta_at),
            reason,
        });
    }
    out
}

/// The facts of the next automatic message of an incident whose updates so far are `history`
/// (oldest first), and whose estimate moved as `moves` say.
pub fn known(history: &[Said], now: &Now<'_>, moves: &[Moved]) -> Known {
    let seq = history.iter().filter(|s| s.automatic).count();
    let last_auto = history.iter().rev().find(|s| s.automatic);
    let baseline = last_auto.or(history.first());
    let changes = baseline.map(|b| changes(b, now, moves)).unwrap_or_default();
    let team = history.iter().rev().find(|s| !s.automatic);
    let quiet_since = team.map(|t| t.at).unwrap_or(now.started_at);
    let in_a_row = history.iter().rev().take_while(|s| s.automatic).count() + 1;
    let missed = history
        .iter()
        .filter(|s| s.kind == UpdateKind::Overdue)
        .count();
    let eta_reason = now.eta_at.and_then(|eta| {
        moves
            .iter()
            .rev()
            .find(|m| m.new == Some(eta))
            .and_then(|m| m.reason.as_deref())
            .filter(|r| *r != FIRST_ESTIMATE)
            .map(clause)
    });
    Known {
        seq,
        elapsed: human_duration(now.at - now.started_at),
        changes,
        since_automatic: last_auto.is_some(),
        team_words: team.map(|t| t.message.clone()),
        quiet_since: human_time(quiet_since, now.at, now.tz),
        quiet_for: human_duration(now.at - quiet_since),
        in_a_row,
        missed,
        eta_reason,
    }
}

/// The reason recorded with an incident's first estimate (not a reason a customer needs).
pub const FIRST_ESTIMATE: &str = "first estimate";

/// Lower-cases and collapses a text for comparing what two messages say: digit runs become `#`,
/// durations `#dur`, and weekday and month names (from times on other days) go, so messages that
/// differ only in their numbers and times compare equal.
pub fn normalise(text: &str) -> String {
    const DROP: &[&str] = &[
        "mon", "tue", "wed", "thu", "fri", "sat", "sun", "jan", "feb", "mar", "apr", "may", "jun",
        "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    const UNITS: &[&str] = &["day", "days", "hour", "hours", "minute", "minutes"];
    let lower = text.to_lowercase().replace("less than a minute", "#dur");
    let mut spaced = String::with_capacity(lower.len());
    let mut last_digit = false;
    for c in lower.chars() {
        if c.is_ascii_digit() {
            if !last_digit {
                spaced.push_str(" # ");
            }
            last_digit = true;
        } else {
            last_digit = false;
            if c.is_alphanumeric() || c == '#' || c == '\'' {
                spaced.push(c);
            } else {
                spaced.push(' ');
            }
        }
    }
    let mut out: Vec<&str> = Vec::new();
    for w in spaced.split_whitespace() {
        if DROP.contains(&w) {
            continue;
        }
        if UNITS.contains(&w) && out.last() == Some(&"#") {
            out.pop();
            // "1 hour 5 minutes" is one duration.
            if out.last() == Some(&"#dur") {
                continue;
            }
            out.push("#dur");
            continue;
        }
        // "24 Nov 14:00" and "14:00" are both a time.
        if w == "#" && out.last() == Some(&"#") {
            continue;
        }
        out.push(w);
    }
    out.join(" ")
}

/// An estimate that moves with an update, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EtaChange {
    pub old: DateTime<Utc>,
    pub new: DateTime<Utc>,
    pub reason: Option<String>,
}

/// The estimate as a line of its own: "We expect this fixed by 14:30 UTC.", or, when the update
/// moves it, "We now expect 15:00 UTC instead of 14:00: the rollback takes longer than a
/// restart."
pub fn eta_line(
    eta_at: Option<DateTime<Utc>>,
    change: Option<&EtaChange>,
    now: DateTime<Utc>,
    tz: chrono_tz::Tz,
) -> String {
    match (eta_at, change) {
        (Some(eta), Some(c)) if eta > now && c.new == eta && c.old != eta => {
            let new = human_time(eta, now, tz);
            let old = human_time(c.old, now, tz);
            // "Tue 24 Nov, 15:00 UTC instead of 14:00": the day and the zone are said once
            // when both times share them.
            let old = match (new.split_once(", "), old.split_once(", ")) {
                (Some((d1, _)), Some((d2, rest))) if d1 == d2 => rest.to_string(),
                _ => old,
            };
            let old = match (new.rsplit_once(' '), old.rsplit_once(' ')) {
                (Some((_, z1)), Some((head, z2))) if z1 == z2 => head.to_string(),
                _ => old,
            };
            match &c.reason {
                Some(r) => format!("We now expect {new} instead of {old}: {}.", clause(r)),
                None => format!("We now expect {new} instead of {old}."),
            }
        }
        (Some(eta), _) if eta > now => {
            format!("We expect this fixed by {}.", human_time(eta, now, tz))
        }
        (Some(eta), _) => format!(
            "Our estimate of {} has passed; a new one will follow.",
            human_time(eta, now, tz)
        ),
        (None, _) => "We don't have a reliable estimate yet.".to_string(),
    }
}

/// The next-update promise as a line of its own: "Next update by Tue 24 Nov, 14:30 UTC."
pub fn next_update_line(at: DateTime<Utc>, now: DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    format!("Next update by {}.", human_time(at, now, tz))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap() + chrono::Duration::minutes(min)
    }

    fn said(min: i64, automatic: bool, kind: UpdateKind, eta: Option<i64>) -> Said {
        Said {
            kind,
            automatic,
            at: t(min),
            message: format!("words at {min}"),
            status: IncidentStatus::Investigating,
            components: BTreeMap::from([("api".into(), ComponentStatus::MajorOutage)]),
            eta_at: eta.map(t),
        }
    }

    #[test]
    fn facts_count_what_happened_and_name_what_changed() {
        let history = vec![
            said(0, false, UpdateKind::Operator, Some(30)),
            said(30, true, UpdateKind::Overdue, Some(30)),
            said(40, false, UpdateKind::Operator, Some(90)),
            said(55, true, UpdateKind::Scheduled, Some(90)),
        ];
        let comps = BTreeMap::from([("api".into(), ComponentStatus::PartialOutage)]);
        let now = Now {
            at: t(70),
            started_at: t(0),
            status: IncidentStatus::Identified,
            components: &comps,
            eta_at: Some(t(120)),
            tz: chrono_tz::UTC,
        };
        let moves = vec![Moved {
            at: t(65),
            old: Some(t(90)),
            new: Some(t(120)),
            reason: Some("The replica needs a full resync.".into()),
        }];
        let k = known(&history, &now, &moves);
        assert_eq!(k.seq, 2);
        assert_eq!(k.missed, 1);
        assert_eq!(k.in_a_row, 2);
        assert_eq!(k.team_words.as_deref(), Some("words at 40"));
        assert_eq!(k.quiet_for, "30 minutes");
        assert_eq!(k.elapsed, "1 hour 10 minutes");
        assert!(k.since_automatic);
        assert_eq!(
            k.eta_reason.as_deref(),
            Some("the replica needs a full resync")
        );
        assert_eq!(
            k.changes,
            vec![
                Change::Status {
                    from: "investigating".into(),
                    to: "identified".into()
                },
                Change::Component {
                    name: "api".into(),
                    from: "major outage".into(),
                    to: "partial outage".into()
                },
                Change::Estimate {
                    direction: "later",
                    from: Some("Mon 23 Nov, 13:30 UTC".into()),
                    to: Some("Mon 23 Nov, 14:00 UTC".into()),
                    reason: Some("the replica needs a full resync".into())
                },
            ]
        );
    }

    #[test]
    fn normalising_ignores_numbers_times_and_plurals_only() {
        assert_eq!(
            normalise("It has been 1 hour 5 minutes. Next update by 14:00 UTC."),
            normalise("It has been 3 days 2 hours. Next update by Tue 24 Nov 02:15 UTC.")
        );
        assert_ne!(normalise("We're still on it."), normalise("We are on it."));
    }

    #[test]
    fn reasons_read_as_clauses() {
        assert_eq!(clause("The restore is slow."), "the restore is slow");
        assert_eq!(clause("DNS broke"), "DNS broke");
        assert_eq!(ordinal(2), "second");
        assert_eq!(ordinal(22), "22nd");
        assert_eq!(ordinal(112), "112th");
    }
}
