//! The incident as an aggregate: its fields and its rules, as pure functions. What a caller may
//! do to an incident (post an update, resolve it) or to a maintenance window (edit, complete,
//! cancel, turn it into an incident) is decided here; `commands` loads the row, asks, and
//! writes. Every transition has a unit test below.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::schedule::PromiseState;
use super::{Impact, IncidentKind, IncidentStatus, Invalid};

/// An incident (or a maintenance window, an incident of another kind): the aggregate every
/// command changes, as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Incident {
    pub id: i64,
    pub title: String,
    pub impact: Impact,
    pub status: IncidentStatus,
    pub eta_at: Option<DateTime<Utc>>,
    pub next_update_at: Option<DateTime<Utc>>,
    pub owner: Option<String>,
    pub started_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    #[serde(skip)]
    pub apologised_eta_at: Option<DateTime<Utc>>,
    #[serde(skip)]
    pub reminded_for_at: Option<DateTime<Utc>>,
    pub kind: IncidentKind,
    /// A maintenance window's longer description.
    pub description: Option<String>,
    /// A maintenance window's announced start and end.
    pub scheduled_for: Option<DateTime<Utc>>,
    pub scheduled_until: Option<DateTime<Utc>>,
    #[serde(skip)]
    pub last_notice_at: Option<DateTime<Utc>>,
    /// Bumped on every public change of a maintenance window (the iCalendar SEQUENCE).
    pub sequence: i64,
    /// The config entry a recurring window came from.
    pub recurrence_key: Option<String>,
}

impl Incident {
    pub fn is_open(&self) -> bool {
        self.resolved_at.is_none()
    }

    pub fn is_maintenance(&self) -> bool {
        self.kind == IncidentKind::Maintenance
    }

    /// The scheduling view of an open incident. A maintenance window that has not started
    /// promises nothing yet (its notices are [`crate::domain::maintenance::due`]'s business).
    pub fn promises(&self) -> Option<PromiseState> {
        if self.status == IncidentStatus::Scheduled {
            return None;
        }
        Some(PromiseState {
            eta_at: self.eta_at,
            next_update_at: self.next_update_at?,
            apologised_eta_at: self.apologised_eta_at,
            reminded_for: self.reminded_for_at,
        })
    }
}

/// Why a change to an incident is refused before it is validated: someone changed it since the
/// caller read it, or it is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Stale {
        id: i64,
        expected: i64,
        current: i64,
    },
    Closed(i64),
}

impl Incident {
    /// It may change only while open, and only from the version the caller read, when it names
    /// one (`If-Match`, a form's hidden version).
    pub fn check_open(&self, expected: Option<i64>) -> Result<(), Refused> {
        if let Some(expected) = expected {
            if expected != self.version {
                return Err(Refused::Stale {
                    id: self.id,
                    expected,
                    current: self.version,
                });
            }
        }
        if !self.is_open() {
            return Err(Refused::Closed(self.id));
        }
        Ok(())
    }

    /// Whether a maintenance window has started (anything but `scheduled`).
    pub fn window_started(&self) -> bool {
        self.status != IncidentStatus::Scheduled
    }

    /// An incident update goes to incidents and started windows; a window that has not started
    /// is changed through the maintenance API.
    pub fn may_post_update(&self) -> Result<(), Invalid> {
        if self.status == IncidentStatus::Scheduled {
            let id = self.id;
            return Err(Invalid::new(
                "status",
                format!(
                    "incident {id} is a maintenance window that has not started; change it with \
                     PATCH /api/v1/maintenances/{id}"
                ),
            ));
        }
        Ok(())
    }

    /// Only a window that has started can be completed.
    pub fn may_complete(&self) -> Result<(), Invalid> {
        if !self.window_started() {
            return Err(Invalid::new(
                "status",
                "the window has not started; cancel it instead (POST /api/v1/maintenances/{id}/cancel)",
            ));
        }
        Ok(())
    }

    /// Only a window that has not started can be cancelled.
    pub fn may_cancel(&self) -> Result<(), Invalid> {
        if self.window_started() {
            return Err(Invalid::new(
                "status",
                "the window has already started; complete it instead (POST /api/v1/maintenances/{id}/complete)",
            ));
        }
        Ok(())
    }

    /// Only a window that has started can go wrong and become an incident.
    pub fn may_become_incident(&self) -> Result<(), Invalid> {
        if !self.window_started() {
            return Err(Invalid::new(
                "status",
                "the window has not started; declare an incident instead (POST /api/v1/incidents)",
            ));
        }
        Ok(())
    }

    /// The status an edit of a window leaves it in: unchanged, or `in_progress`/`verifying`
    /// once it has started (completing, cancelling and turning it into an incident are their
    /// own actions).
    pub fn window_status_after_edit(
        &self,
        requested: Option<IncidentStatus>,
    ) -> Result<IncidentStatus, Invalid> {
        match requested {
            None => Ok(self.status),
            Some(st @ (IncidentStatus::InProgress | IncidentStatus::Verifying))
                if self.window_started() =>
            {
                Ok(st)
            }
            Some(st) => Err(Invalid::new(
                "status",
                format!(
                    "`{st}` cannot be set here: a started window may be in_progress or verifying \
                     (complete, cancel and incident are their own actions)"
                ),
            )),
        }
    }
}

/// The status an incident update (or a declaration) may set: not a maintenance status, and not
/// `resolved`, which is its own action.
pub fn update_status(status: IncidentStatus) -> Result<IncidentStatus, Invalid> {
    if status.is_maintenance() {
        return Err(Invalid::new(
            "status",
            format!(
                "`{status}` is a maintenance status; use investigating, identified or monitoring \
                 (maintenance windows live under /api/v1/maintenances)"
            ),
        ));
    }
    if status == IncidentStatus::Resolved {
        return Err(Invalid::new(
            "status",
            "use the resolve action (POST /api/v1/incidents/{id}/resolve) to resolve an incident",
        ));
    }
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use IncidentStatus as S;

    fn incident(kind: IncidentKind, status: IncidentStatus) -> Incident {
        let t = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap();
        Incident {
            id: 7,
            title: "Queue backlog".into(),
            impact: Impact::Major,
            status,
            eta_at: None,
            next_update_at: Some(t),
            owner: None,
            started_at: t,
            resolved_at: matches!(status, S::Resolved | S::Completed | S::Cancelled).then_some(t),
            created_at: t,
            updated_at: t,
            version: 3,
            apologised_eta_at: None,
            reminded_for_at: None,
            kind,
            description: None,
            scheduled_for: None,
            scheduled_until: None,
            last_notice_at: None,
            sequence: 0,
            recurrence_key: None,
        }
    }

    #[test]
    fn an_open_incident_changes_only_from_the_version_read() {
        let i = incident(IncidentKind::Incident, S::Investigating);
        assert_eq!(i.check_open(None), Ok(()));
        assert_eq!(i.check_open(Some(3)), Ok(()));
        assert_eq!(
            i.check_open(Some(2)),
            Err(Refused::Stale {
                id: 7,
                expected: 2,
                current: 3
            })
        );
    }

    #[test]
    fn a_resolved_incident_or_a_closed_window_is_over() {
        for (kind, st) in [
            (IncidentKind::Incident, S::Resolved),
            (IncidentKind::Maintenance, S::Completed),
            (IncidentKind::Maintenance, S::Cancelled),
        ] {
            let i = incident(kind, st);
            assert_eq!(i.check_open(None), Err(Refused::Closed(7)), "{st}");
        }
    }

    #[test]
    fn updates_go_to_incidents_and_started_windows_only() {
        for st in [S::Investigating, S::Identified, S::Monitoring] {
            assert!(incident(IncidentKind::Incident, st)
                .may_post_update()
                .is_ok());
        }
        for st in [S::InProgress, S::Verifying] {
            assert!(incident(IncidentKind::Maintenance, st)
                .may_post_update()
                .is_ok());
        }
        let e = incident(IncidentKind::Maintenance, S::Scheduled)
            .may_post_update()
            .unwrap_err();
        assert!(
            e.to_string().contains("PATCH /api/v1/maintenances/7"),
            "{e}"
        );
    }

    #[test]
    fn a_window_is_cancelled_before_it_starts_and_completed_after() {
        let scheduled = incident(IncidentKind::Maintenance, S::Scheduled);
        assert!(scheduled.may_cancel().is_ok());
        assert!(scheduled.may_complete().is_err());
        assert!(scheduled.may_become_incident().is_err());
        for st in [S::InProgress, S::Verifying] {
            let started = incident(IncidentKind::Maintenance, st);
            assert!(started.may_complete().is_ok(), "{st}");
            assert!(started.may_become_incident().is_ok(), "{st}");
            let e = started.may_cancel().unwrap_err();
            assert!(e.to_string().contains("complete it instead"), "{e}");
        }
    }

    #[test]
    fn an_edit_moves_a_started_window_between_in_progress_and_verifying_only() {
        let scheduled = incident(IncidentKind::Maintenance, S::Scheduled);
        assert_eq!(scheduled.window_status_after_edit(None), Ok(S::Scheduled));
        assert!(scheduled
            .window_status_after_edit(Some(S::InProgress))
            .is_err());
        let started = incident(IncidentKind::Maintenance, S::InProgress);
        assert_eq!(started.window_status_after_edit(None), Ok(S::InProgress));
        assert_eq!(
            started.window_status_after_edit(Some(S::Verifying)),
            Ok(S::Verifying)
        );
        for st in [S::Completed, S::Cancelled, S::Scheduled, S::Investigating] {
            assert!(started.window_status_after_edit(Some(st)).is_err(), "{st}");
        }
    }

    #[test]
    fn an_update_may_set_an_incident_status_but_not_resolve_or_a_window_status() {
        for st in [S::Investigating, S::Identified, S::Monitoring] {
            assert_eq!(update_status(st), Ok(st));
        }
        assert!(update_status(S::Resolved)
            .unwrap_err()
            .to_string()
            .contains("resolve action"));
        for st in [
            S::Scheduled,
            S::InProgress,
            S::Verifying,
            S::Completed,
            S::Cancelled,
        ] {
            assert!(update_status(st)
                .unwrap_err()
                .to_string()
                .contains("maintenance status"));
        }
    }

    #[test]
    fn a_window_that_has_not_started_promises_nothing_yet() {
        assert_eq!(
            incident(IncidentKind::Maintenance, S::Scheduled).promises(),
            None
        );
        assert!(incident(IncidentKind::Incident, S::Investigating)
            .promises()
            .is_some());
    }
}
