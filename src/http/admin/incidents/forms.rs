//! The incident forms as posted: fields in, a [`Declare`] or [`PostUpdate`] out, and the words a
//! refused field is shown with. Parsing only: no database, no rendering.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};

use crate::commands::{Declare, PostUpdate};
use crate::domain::{parse_duration, ComponentStatus, EtaInput, Impact, IncidentStatus, Invalid};

pub const IMPACTS: &[&str] = &["minor", "major", "critical", "none"];
pub const STATUSES: &[&str] = &["investigating", "identified", "monitoring"];
pub const COMPONENT_STATUSES: &[&str] = &[
    "degraded_performance",
    "partial_outage",
    "major_outage",
    "under_maintenance",
    "operational",
];

/// A console form as posted (fields absent from a form are empty).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Draft {
    pub title: String,
    pub impact: String,
    pub status: String,
    pub message: String,
    /// Component id → status (empty: not affected / unchanged).
    pub components: BTreeMap<String, String>,
    /// `in`, `at`, `unknown` (declare) or `keep` (update).
    pub eta_mode: String,
    pub eta_in: String,
    pub eta_at: String,
    pub eta_reason: String,
    pub next_update_in: String,
    pub version: Option<i64>,
    pub action: String,
    pub incident_id: Option<i64>,
    pub resolve: bool,
}

impl Draft {
    pub fn from_fields(fields: &[(String, String)]) -> Self {
        let mut d = Draft::default();
        for (k, v) in fields {
            match k.as_str() {
                "title" => d.title = v.clone(),
                "impact" => d.impact = v.clone(),
                "status" => d.status = v.clone(),
                "message" => d.message = v.clone(),
                "eta_mode" => d.eta_mode = v.clone(),
                "eta_in" => d.eta_in = v.clone(),
                "eta_at" => d.eta_at = v.clone(),
                "eta_reason" => d.eta_reason = v.clone(),
                "next_update_in" => d.next_update_in = v.clone(),
                "version" => d.version = v.trim().parse().ok(),
                "incident_id" => d.incident_id = v.trim().parse().ok(),
                "action" => d.action = v.clone(),
                "resolve" => d.resolve = v == "1",
                other => {
                    if let Some(id) = other.strip_prefix("component.") {
                        d.components.insert(id.to_string(), v.trim().to_string());
                    }
                }
            }
        }
        d
    }

    pub fn impact(&self) -> Result<Option<Impact>, Invalid> {
        let s = self.impact.trim();
        if s.is_empty() {
            return Ok(None);
        }
        s.parse()
            .map(Some)
            .map_err(|_| Invalid::new("impact", format!("expected one of: {}", IMPACTS.join(", "))))
    }

    pub fn status(&self) -> Result<Option<IncidentStatus>, Invalid> {
        let s = self.status.trim();
        if s.is_empty() {
            return Ok(None);
        }
        s.parse().map(Some).map_err(|_| {
            Invalid::new(
                "status",
                format!("expected one of: {}", STATUSES.join(", ")),
            )
        })
    }

    pub fn components(&self) -> Result<Option<BTreeMap<String, ComponentStatus>>, Invalid> {
        let mut out = BTreeMap::new();
        for (id, s) in &self.components {
            if s.is_empty() {
                continue;
            }
            let status: ComponentStatus = s.parse().map_err(|_| {
                Invalid::new(
                    format!("components.{id}"),
                    format!("expected one of: {}", COMPONENT_STATUSES.join(", ")),
                )
            })?;
            out.insert(id.clone(), status);
        }
        Ok((!out.is_empty()).then_some(out))
    }

    /// The estimate entered: a duration, a local time in the site's zone, or none.
    pub fn eta(&self, tz: chrono_tz::Tz) -> Result<Option<EtaInput>, Invalid> {
        match self.eta_mode.as_str() {
            "in" => parse_duration("eta_in", &self.eta_in).map(|d| Some(EtaInput::In(d))),
            "at" => local_time("eta_at", &self.eta_at, tz).map(|t| Some(EtaInput::At(t))),
            _ => Ok(None),
        }
    }

    pub fn next_update_in(&self) -> Result<Option<Duration>, Invalid> {
        let s = self.next_update_in.trim();
        if s.is_empty() {
            return Ok(None);
        }
        parse_duration("next_update_in", s).map(Some)
    }

    pub fn reason(&self) -> Option<String> {
        let r = self.eta_reason.trim();
        (!r.is_empty()).then(|| r.to_string())
    }
}

/// A `datetime-local` field's value, read as a local time in the site's zone `tz`.
pub fn local_time(field: &str, raw: &str, tz: chrono_tz::Tz) -> Result<DateTime<Utc>, Invalid> {
    let raw = raw.trim();
    let naive = NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S"))
        .map_err(|_| {
            Invalid::new(
                field,
                format!(
                    "`{}` is not a date and time like 2026-11-23T14:30",
                    crate::http::api::clip(raw, 40)
                ),
            )
        })?;
    let at = tz
        .from_local_datetime(&naive)
        .earliest()
        .ok_or_else(|| Invalid::new(field, "that local time does not exist (a clock change)"))?;
    Ok(at.with_timezone(&Utc))
}

/// The value a `datetime-local` field shows for `t` in the site's zone `tz`.
pub fn local_input(t: DateTime<Utc>, tz: chrono_tz::Tz) -> String {
    t.with_timezone(&tz).format("%Y-%m-%dT%H:%M").to_string()
}

/// The declare form as the command takes it; the operator declaring owns the incident.
pub fn to_declare(d: &Draft, tz: chrono_tz::Tz, owner: &str) -> Result<Declare, Invalid> {
    Ok(Declare {
        title: d.title.clone(),
        impact: d.impact()?.unwrap_or(Impact::Minor),
        status: d.status()?.unwrap_or(IncidentStatus::Investigating),
        message: d.message.clone(),
        components: d.components()?.unwrap_or_default(),
        eta: d.eta(tz)?,
        next_update_in: d.next_update_in()?,
        owner: Some(owner.to_string()),
    })
}

/// The update form as the command takes it; the form must carry the version it was read at.
pub fn to_update(d: &Draft, tz: chrono_tz::Tz) -> Result<PostUpdate, Invalid> {
    // A later estimate without a reason is refused by the command, which knows the current one.
    let eta = d.eta(tz)?;
    let version = d.version.ok_or_else(|| {
        Invalid::new(
            "version",
            "the form lost the incident's version; reload the page",
        )
    })?;
    Ok(PostUpdate {
        message: d.message.clone(),
        title: None,
        status: d.status()?,
        impact: d.impact()?,
        components: d.components()?,
        eta,
        eta_reason: d.reason(),
        next_update_in: d.next_update_in()?,
        expected_version: Some(version),
    })
}

/// A refused field as the form names it: "Why the estimate changes: ..." rather than the API's
/// `eta_reason`.
pub fn form_error(e: &Invalid) -> String {
    let label = match e.field.as_str() {
        "eta_reason" => "Why the estimate changes",
        "eta_in" => "Fixed in",
        "eta_at" | "eta" => "Fixed at",
        "message" => "Message",
        "title" => "Title",
        "impact" => "Impact",
        "status" => "Status",
        "next_update_in" => "Next update within",
        "version" => "Version",
        other => match other.strip_prefix("components.") {
            Some(_) => "Affected components",
            None => other,
        },
    };
    format!("{label}: {}", e.message)
}
