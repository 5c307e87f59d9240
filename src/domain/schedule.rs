//! What the scheduler owes an open incident at a given moment.
//!
//! Each public update promises the next one by a time. When that time comes and nobody has
//! written, Candor posts a holding update. When the estimate passes and the incident is still
//! open, Candor apologises and asks the team for a new estimate. Shortly before a promise falls
//! due, the team is reminded so a human can write it first.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::to_chrono;

/// The parts of an open incident that scheduling depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromiseState {
    pub eta_at: Option<DateTime<Utc>>,
    pub next_update_at: DateTime<Utc>,
    /// The estimate for which an apology has already been posted, if any.
    pub apologised_eta_at: Option<DateTime<Utc>>,
    /// The promised update time the team has already been reminded of, if any.
    pub reminded_for: Option<DateTime<Utc>>,
}

/// One thing the scheduler must do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DueAction {
    /// The estimate passed while the incident is open: apologise publicly, ask for a new one.
    Apology { eta: DateTime<Utc> },
    /// The promised update time came and nobody wrote: post a holding update.
    Holding { promised: DateTime<Utc> },
    /// A promised update falls due soon: remind the team.
    OpsReminder { promised: DateTime<Utc> },
}

impl DueAction {
    /// The action's name and due time: together with the incident, the key that makes it happen
    /// exactly once however many schedulers race for it.
    pub fn key(&self) -> (&'static str, DateTime<Utc>) {
        match *self {
            DueAction::Apology { eta } => ("apology", eta),
            DueAction::Holding { promised } => ("holding", promised),
            DueAction::OpsReminder { promised } => ("ops_reminder", promised),
        }
    }
}

/// The one action due for this incident at `now`, most important first. An apology also carries
/// the next-update promise, so it takes the place of a holding update due at the same moment.
pub fn due_action(
    s: &PromiseState,
    now: DateTime<Utc>,
    remind_before: Duration,
) -> Option<DueAction> {
    if let Some(eta) = s.eta_at {
        if eta <= now && s.apologised_eta_at != Some(eta) {
            return Some(DueAction::Apology { eta });
        }
    }
    if s.next_update_at <= now {
        return Some(DueAction::Holding {
            promised: s.next_update_at,
        });
    }
    if !remind_before.is_zero()
        && now >= s.next_update_at - to_chrono(remind_before)
        && s.reminded_for != Some(s.next_update_at)
    {
        return Some(DueAction::OpsReminder {
            promised: s.next_update_at,
        });
    }
    None
}

/// When the next public update is due after one posted at `now`: the caller's request, or the
/// policy's cadence.
pub fn next_update_after(
    now: DateTime<Utc>,
    requested: Option<Duration>,
    cadence: Duration,
) -> DateTime<Utc> {
    now + to_chrono(requested.unwrap_or(cadence))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, h, m, 0).unwrap()
    }
    const FIVE_MIN: Duration = Duration::from_secs(300);

    fn state() -> PromiseState {
        PromiseState {
            eta_at: Some(t(13, 0)),
            next_update_at: t(12, 30),
            apologised_eta_at: None,
            reminded_for: None,
        }
    }

    #[test]
    fn nothing_is_due_early() {
        assert_eq!(due_action(&state(), t(12, 10), FIVE_MIN), None);
    }

    #[test]
    fn the_team_is_reminded_before_a_promise_falls_due() {
        assert_eq!(
            due_action(&state(), t(12, 26), FIVE_MIN),
            Some(DueAction::OpsReminder {
                promised: t(12, 30)
            })
        );
        let reminded = PromiseState {
            reminded_for: Some(t(12, 30)),
            ..state()
        };
        assert_eq!(due_action(&reminded, t(12, 26), FIVE_MIN), None);
        assert_eq!(due_action(&state(), t(12, 26), Duration::ZERO), None);
    }

    #[test]
    fn a_missed_promise_is_a_holding_update() {
        assert_eq!(
            due_action(&state(), t(12, 30), FIVE_MIN),
            Some(DueAction::Holding {
                promised: t(12, 30)
            })
        );
    }

    #[test]
    fn a_passed_eta_is_an_apology_once() {
        let s = PromiseState {
            next_update_at: t(13, 20),
            ..state()
        };
        assert_eq!(
            due_action(&s, t(13, 0), FIVE_MIN),
            Some(DueAction::Apology { eta: t(13, 0) })
        );
        let done = PromiseState {
            apologised_eta_at: Some(t(13, 0)),
            ..s
        };
        assert_eq!(due_action(&done, t(13, 1), FIVE_MIN), None);
    }

    #[test]
    fn an_apology_takes_the_place_of_a_holding_update_due_with_it() {
        let s = PromiseState {
            next_update_at: t(12, 50),
            ..state()
        };
        assert_eq!(
            due_action(&s, t(13, 5), FIVE_MIN),
            Some(DueAction::Apology { eta: t(13, 0) })
        );
    }

    #[test]
    fn a_revised_eta_that_passes_earns_a_new_apology() {
        let s = PromiseState {
            eta_at: Some(t(14, 0)),
            next_update_at: t(15, 0),
            apologised_eta_at: Some(t(13, 0)),
            reminded_for: None,
        };
        assert_eq!(
            due_action(&s, t(14, 0), FIVE_MIN),
            Some(DueAction::Apology { eta: t(14, 0) })
        );
    }
}
