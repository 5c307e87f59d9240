//! Pure types and decisions: no I/O, and every function that needs the time takes `now`.
//!
//! Where does an apology get decided? [`schedule::due_action`]. Where is it sent? `outbox` and
//! `channels`.

pub mod alerts;
pub mod correction;
pub mod estimates;
pub mod honesty;
pub mod inbox;
pub mod incident;
pub mod maintenance;
pub mod postmortem;
pub mod record;
pub mod schedule;
pub mod status;
pub mod subscriber;
pub mod text;
pub mod urgency;
pub mod wording;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($s => Ok($name::$variant),)+
                    other => Err(format!(
                        "`{}` is not a valid {}; expected one of: {}",
                        other,
                        stringify!($name),
                        [$($s),+].join(", ")
                    )),
                }
            }
        }
    };
}

string_enum!(
    /// How badly customers are affected.
    Impact { None => "none", Minor => "minor", Major => "major", Critical => "critical" }
);

string_enum!(
    /// Where the team is in handling an incident.
    IncidentStatus {
        Investigating => "investigating",
        Identified => "identified",
        Monitoring => "monitoring",
        Resolved => "resolved",
        Scheduled => "scheduled",
        InProgress => "in_progress",
        Verifying => "verifying",
        Completed => "completed",
        Cancelled => "cancelled",
    }
);

string_enum!(
    /// What an incidents row is: an outage, or a planned maintenance window.
    IncidentKind { Incident => "incident", Maintenance => "maintenance" }
);

impl IncidentStatus {
    /// Whether this status belongs to a maintenance window (Statuspage's scheduled /
    /// in_progress / verifying / completed, plus cancelled).
    pub fn is_maintenance(self) -> bool {
        matches!(
            self,
            IncidentStatus::Scheduled
                | IncidentStatus::InProgress
                | IncidentStatus::Verifying
                | IncidentStatus::Completed
                | IncidentStatus::Cancelled
        )
    }
}

string_enum!(
    /// A component's state, as Atlassian Statuspage names them.
    ComponentStatus {
        Operational => "operational",
        DegradedPerformance => "degraded_performance",
        PartialOutage => "partial_outage",
        MajorOutage => "major_outage",
        UnderMaintenance => "under_maintenance",
    }
);

string_enum!(
    /// Who or what wrote an update.
    UpdateKind {
        Operator => "operator",
        Scheduled => "scheduled",
        Overdue => "overdue",
        Resolution => "resolution",
        Notice => "notice",
    }
);

string_enum!(
    /// Whom a delivery is for: everyone (the status page's channels), the team, or one
    /// subscriber privately (a confirmation mail), or one customer in their own thread (a reply
    /// from the inbox).
    Audience { Public => "public", Ops => "ops", Subscriber => "subscriber", Reply => "reply", Mirror => "mirror" }
);

string_enum!(
    /// Where a delivery is in its life.
    DeliveryState {
        Pending => "pending",
        InFlight => "in_flight",
        Delivered => "delivered",
        Dead => "dead",
    }
);

impl ComponentStatus {
    /// Severity, for picking the worst status of a component across open incidents.
    pub fn severity(self) -> u8 {
        match self {
            ComponentStatus::Operational => 0,
            ComponentStatus::UnderMaintenance => 1,
            ComponentStatus::DegradedPerformance => 2,
            ComponentStatus::PartialOutage => 3,
            ComponentStatus::MajorOutage => 4,
        }
    }
}

/// An estimate as a caller gives it: a time, or a duration from now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EtaInput {
    At(DateTime<Utc>),
    In(Duration),
}

/// A rule the input broke, naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    pub field: String,
    pub message: String,
}

impl Invalid {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The longest an estimate or promise may reach ahead: 30 days.
pub const MAX_AHEAD: Duration = Duration::from_secs(30 * 86_400);
/// The shortest gap before a promised next update.
pub const MIN_NEXT_UPDATE: Duration = Duration::from_secs(60);
/// The longest gap before a promised next update.
pub const MAX_NEXT_UPDATE: Duration = Duration::from_secs(86_400);

impl EtaInput {
    /// Parses the API's two spellings: `eta` (RFC 3339) or `eta_in` (a humantime duration).
    pub fn parse(eta: Option<&str>, eta_in: Option<&str>) -> Result<Option<Self>, Invalid> {
        match (eta, eta_in) {
            (Some(_), Some(_)) => Err(Invalid::new(
                "eta",
                "give either `eta` (a time) or `eta_in` (a duration), not both",
            )),
            (Some(t), None) => DateTime::parse_from_rfc3339(t.trim())
                .map(|t| Some(EtaInput::At(t.with_timezone(&Utc))))
                .map_err(|_| {
                    Invalid::new(
                        "eta",
                        format!(
                            "`{t}` is not an RFC 3339 time; write it like `2026-11-23T14:30:00Z`"
                        ),
                    )
                }),
            (None, Some(d)) => parse_duration("eta_in", d).map(|d| Some(EtaInput::In(d))),
            (None, None) => Ok(None),
        }
    }

    /// The absolute time this estimate means at `now`, which must be in the future.
    pub fn resolve(self, now: DateTime<Utc>) -> Result<DateTime<Utc>, Invalid> {
        let (field, at) = match self {
            EtaInput::At(t) => ("eta", t),
            EtaInput::In(d) => ("eta_in", now + to_chrono(d)),
        };
        if at <= now {
            return Err(Invalid::new(field, "the estimate must be in the future"));
        }
        if at > now + to_chrono(MAX_AHEAD) {
            return Err(Invalid::new(field, "the estimate must be within 30 days"));
        }
        Ok(crate::clock::truncate_ms(at))
    }
}

/// Parses a humantime duration (`90s`, `45m`, `2h`), naming the field on error.
pub fn parse_duration(field: &str, s: &str) -> Result<Duration, Invalid> {
    let d = humantime::parse_duration(s.trim()).map_err(|_| {
        Invalid::new(
            field,
            format!("`{s}` is not a duration; write it like `90s`, `45m` or `2h`"),
        )
    })?;
    if d.is_zero() {
        return Err(Invalid::new(field, "must be more than zero"));
    }
    Ok(d)
}

/// Checks a promised gap before the next update.
pub fn check_next_update_in(d: Duration) -> Result<Duration, Invalid> {
    if d < MIN_NEXT_UPDATE || d > MAX_NEXT_UPDATE {
        return Err(Invalid::new(
            "next_update_in",
            "must be between 1m and 24h: customers need to hear from you at least daily",
        ));
    }
    Ok(d)
}

pub fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// Checks a human-written text field's length (in characters) and that it is not blank.
pub fn check_text(field: &str, s: &str, max_chars: usize) -> Result<String, Invalid> {
    let t = s.trim();
    if t.is_empty() {
        return Err(Invalid::new(field, "must not be empty"));
    }
    let n = t.chars().count();
    if n > max_chars {
        return Err(Invalid::new(
            field,
            format!("is {n} characters long; the limit is {max_chars}"),
        ));
    }
    if t.chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return Err(Invalid::new(field, "must not contain control characters"));
    }
    Ok(t.to_string())
}

pub const MAX_TITLE: usize = 200;
pub const MAX_MESSAGE: usize = 5_000;
pub const MAX_REASON: usize = 1_000;

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap()
    }

    #[test]
    fn eta_in_is_relative_to_now() {
        let e = EtaInput::parse(None, Some("45m")).unwrap().unwrap();
        assert_eq!(
            e.resolve(now()).unwrap(),
            now() + chrono::Duration::minutes(45)
        );
    }

    #[test]
    fn eta_in_the_past_is_refused() {
        let e = EtaInput::parse(Some("2026-11-23T11:00:00Z"), None)
            .unwrap()
            .unwrap();
        assert_eq!(e.resolve(now()).unwrap_err().field, "eta");
    }

    #[test]
    fn both_spellings_at_once_are_refused() {
        assert!(EtaInput::parse(Some("2026-11-23T13:00:00Z"), Some("1h")).is_err());
    }

    #[test]
    fn unknown_enum_value_lists_the_valid_ones() {
        let e = "severe".parse::<Impact>().unwrap_err();
        assert!(e.contains("none, minor, major, critical"), "{e}");
    }

    #[test]
    fn text_limits() {
        assert!(check_text("title", "  ", 10).is_err());
        assert!(check_text("title", "abcdefghijk", 10).is_err());
        assert_eq!(check_text("title", " ok ", 10).unwrap(), "ok");
    }
}
