//! The bodies `/api/v1/maintenances` accepts and the views it answers with, with their
//! parsing (times in RFC 3339).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::views;
use super::views::{IncidentDetail, IncidentSummary};
use crate::app::App;
use crate::domain::{ComponentStatus, Impact, IncidentKind, IncidentStatus, Invalid};
use crate::http::error::ApiError;
use crate::store::incidents::{self, Incident};
use crate::store::Conn;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleBody {
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub(super) title: String,
    pub(super) description: Option<String>,
    /// Component ids from config.
    #[serde(default)]
    pub(super) components: Vec<String>,
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub(super) starts_at: String,
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub(super) ends_at: Option<String>,
    /// Instead of `ends_at`: how long it lasts (`2h`).
    #[schema(example = "2h", pattern = "^ *[0-9]+ *[a-z]+( *[0-9]+ *[a-z]+)* *$")]
    pub(super) duration: Option<String>,
    /// The announcement's words; a standard announcement is written when absent.
    pub(super) message: Option<String>,
    pub(super) owner: Option<String>,
}

/// A change to a window. Before it starts anything may change; after, the title,
/// description, end (with a `reason`) and status (`in_progress` or `verifying`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditBody {
    pub(super) title: Option<String>,
    pub(super) description: Option<String>,
    pub(super) components: Option<Vec<String>>,
    #[schema(format = DateTime)]
    pub(super) starts_at: Option<String>,
    #[schema(format = DateTime)]
    pub(super) ends_at: Option<String>,
    pub(super) message: Option<String>,
    /// Why the end moves (needed once the window has started).
    pub(super) reason: Option<String>,
    pub(super) status: Option<IncidentStatus>,
    pub(super) version: Option<i64>,
}

/// A later end, with the reason customers are told.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtendBody {
    #[schema(format = DateTime)]
    pub(super) ends_at: Option<String>,
    /// Instead of `ends_at`: how much longer from the current planned end (`30m`).
    #[schema(example = "30m", pattern = "^ *[0-9]+ *[a-z]+( *[0-9]+ *[a-z]+)* *$")]
    pub(super) extend_by: Option<String>,
    pub(super) reason: String,
    pub(super) message: Option<String>,
    pub(super) version: Option<i64>,
}

/// Complete or cancel a window, optionally in your own words.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseBody {
    pub(super) message: Option<String>,
    pub(super) version: Option<i64>,
}

/// The window went wrong: it continues as an incident.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentBody {
    #[schema(min_length = 1, max_length = 5000, pattern = "\\S")]
    pub(super) message: String,
    #[serde(default = "default_impact")]
    pub(super) impact: Impact,
    #[serde(default = "default_status")]
    pub(super) status: IncidentStatus,
    pub(super) components: Option<BTreeMap<String, ComponentStatus>>,
    pub(super) version: Option<i64>,
}

pub(super) fn default_impact() -> Impact {
    Impact::Major
}
pub(super) fn default_status() -> IncidentStatus {
    IncidentStatus::Investigating
}

pub(super) fn time(field: &str, raw: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(raw.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            ApiError::from(Invalid::new(
                field,
                format!(
                    "`{}` is not an RFC 3339 time; write it like `2026-11-29T02:00:00Z`",
                    super::clip(raw, 60)
                ),
            ))
        })
}

pub(super) fn opt_time(field: &str, raw: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    raw.map(|r| time(field, r)).transpose()
}

/// What a maintenance window adds to an incident's fields.
#[derive(Debug, Serialize, ToSchema)]
pub struct WindowFields {
    /// `maintenance`, or `incident` once the window was turned into one.
    pub kind: IncidentKind,
    pub description: Option<String>,
    /// The planned start.
    pub scheduled_for: Option<DateTime<Utc>>,
    /// The planned end (the `eta` follows extensions).
    pub scheduled_until: Option<DateTime<Utc>>,
    /// Bumped by every change to the announced window (iCalendar SEQUENCE).
    pub sequence: i64,
    /// The `maintenance.recurring` entry it came from, if any.
    pub recurrence_key: Option<String>,
}

impl WindowFields {
    pub(super) fn of(w: &Incident) -> Self {
        WindowFields {
            kind: w.kind,
            description: w.description.clone(),
            scheduled_for: w.scheduled_for,
            scheduled_until: w.scheduled_until,
            sequence: w.sequence,
            recurrence_key: w.recurrence_key.clone(),
        }
    }
}

/// A window with its updates and their deliveries.
#[derive(Debug, Serialize, ToSchema)]
pub struct MaintenanceDetail {
    #[serde(flatten)]
    pub incident: IncidentDetail,
    #[serde(flatten)]
    pub window: WindowFields,
    /// After a write: configured peak hours the window overlaps (it is scheduled anyway).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warnings: Option<Vec<String>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MaintenanceSummary {
    #[serde(flatten)]
    pub incident: IncidentSummary,
    #[serde(flatten)]
    pub window: WindowFields,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MaintenanceList {
    pub maintenances: Vec<MaintenanceSummary>,
}

/// A window as the API shows it: the incident view plus the window's own fields.
pub async fn window_body(
    conn: &mut Conn,
    app: &App,
    id: i64,
    warnings: Option<Vec<String>>,
) -> Result<Value, ApiError> {
    let not_found = || ApiError::NotFound(format!("no maintenance window with id {id}"));
    let w = incidents::get(conn, id).await?.ok_or_else(not_found)?;
    let incident = views::incident(conn, &app.config, id)
        .await?
        .ok_or_else(not_found)?;
    let body = MaintenanceDetail {
        incident,
        window: WindowFields::of(&w),
        warnings,
    };
    serde_json::to_value(body).map_err(ApiError::from)
}
