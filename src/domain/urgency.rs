//! The dashboard's order: most urgent first. An incident whose estimate has passed or whose
//! promised update is overdue comes before every incident that is on time; then the larger
//! impact (critical, major, minor, none); then the nearest promise (the earlier of the next
//! promised update and the ETA; an incident that promised nothing comes after those that did);
//! then the older incident. A pure function of `now`.

use std::cmp::Reverse;

use chrono::{DateTime, Utc};

use super::incident::Incident;
use super::Impact;

/// What decides an incident's place; `Ord`, smallest first = most urgent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Urgency {
    /// `false` (late) sorts before `true` (on time).
    on_time: bool,
    impact: Reverse<Impact>,
    /// `None` sorts last: `(false, t)` for a promise, `(true, _)` for none.
    nearest: (bool, Option<DateTime<Utc>>),
    started_at: DateTime<Utc>,
    id: i64,
}

/// Whether the incident broke a promise: its ETA has passed, or its next update is overdue.
pub fn is_late(i: &Incident, now: DateTime<Utc>) -> bool {
    i.eta_at.is_some_and(|t| t <= now) || i.next_update_at.is_some_and(|t| t <= now)
}

/// The incident's sort key at `now`.
pub fn urgency(i: &Incident, now: DateTime<Utc>) -> Urgency {
    let nearest = match (i.next_update_at, i.eta_at) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    Urgency {
        on_time: !is_late(i, now),
        impact: Reverse(i.impact),
        nearest: (nearest.is_none(), nearest),
        started_at: i.started_at,
        id: i.id,
    }
}

/// Sorts `incidents` most urgent first.
pub fn most_urgent_first(incidents: &mut [Incident], now: DateTime<Utc>) {
    incidents.sort_by_cached_key(|i| urgency(i, now));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{IncidentKind, IncidentStatus};
    use chrono::{Duration, TimeZone};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 2, 3, 0, 0).unwrap()
    }

    fn inc(id: i64, impact: Impact, next_update_in: Option<i64>, eta_in: Option<i64>) -> Incident {
        let at = |m: i64| now() + Duration::minutes(m);
        Incident {
            id,
            title: format!("#{id}"),
            impact,
            status: IncidentStatus::Investigating,
            eta_at: eta_in.map(at),
            next_update_at: next_update_in.map(at),
            owner: None,
            started_at: now() - Duration::minutes(60 - id),
            resolved_at: None,
            created_at: now(),
            updated_at: now(),
            version: 1,
            apologised_eta_at: None,
            reminded_for_at: None,
            kind: IncidentKind::Incident,
            description: None,
            scheduled_for: None,
            scheduled_until: None,
            last_notice_at: None,
            sequence: 0,
            recurrence_key: None,
        }
    }

    fn order(mut v: Vec<Incident>) -> Vec<i64> {
        most_urgent_first(&mut v, now());
        v.into_iter().map(|i| i.id).collect()
    }

    #[test]
    fn a_passed_estimate_comes_before_a_larger_impact_on_time() {
        let ids = order(vec![
            inc(1, Impact::Critical, Some(10), Some(30)),
            inc(2, Impact::Minor, Some(10), Some(-1)),
        ]);
        assert_eq!(ids, vec![2, 1]);
    }

    #[test]
    fn an_overdue_update_counts_as_late_too() {
        let ids = order(vec![
            inc(1, Impact::Critical, Some(5), None),
            inc(2, Impact::None, Some(-3), None),
        ]);
        assert_eq!(ids, vec![2, 1]);
    }

    #[test]
    fn a_promise_due_exactly_now_is_late() {
        let i = inc(1, Impact::Minor, Some(0), None);
        assert!(is_late(&i, now()));
        assert!(!is_late(&inc(2, Impact::Minor, Some(1), Some(1)), now()));
    }

    #[test]
    fn then_impact_from_critical_to_none() {
        let ids = order(vec![
            inc(1, Impact::None, Some(1), None),
            inc(2, Impact::Minor, Some(20), None),
            inc(3, Impact::Critical, Some(40), None),
            inc(4, Impact::Major, Some(30), None),
        ]);
        assert_eq!(ids, vec![3, 4, 2, 1]);
    }

    #[test]
    fn then_the_nearest_of_next_update_and_eta() {
        let ids = order(vec![
            inc(1, Impact::Major, Some(30), None),
            inc(2, Impact::Major, Some(60), Some(10)),
            inc(3, Impact::Major, None, None),
            inc(4, Impact::Major, Some(20), Some(90)),
        ]);
        assert_eq!(ids, vec![2, 4, 1, 3], "no promise at all comes last");
    }

    #[test]
    fn among_late_ones_impact_then_the_most_overdue() {
        let ids = order(vec![
            inc(1, Impact::Minor, Some(-30), None),
            inc(2, Impact::Critical, Some(-1), None),
            inc(3, Impact::Critical, None, Some(-20)),
        ]);
        assert_eq!(ids, vec![3, 2, 1]);
    }

    #[test]
    fn equal_urgency_keeps_the_older_incident_first() {
        let ids = order(vec![
            inc(5, Impact::Minor, Some(10), None),
            inc(4, Impact::Minor, Some(10), None),
        ]);
        assert_eq!(ids, vec![4, 5], "#4 started a minute before #5");
    }
}
