//! The window forms as posted: fields in, a maintenance command's input out. Parsing only: no
//! database, no rendering.

use chrono::{DateTime, Utc};

use crate::commands::maintenance::{Close, EditWindow, ToIncident, MAX_WINDOW};
use crate::domain::{parse_duration, to_chrono, Impact, IncidentStatus, Invalid};
use crate::http::admin::incidents::local_time;

pub const IMPACTS: &[&str] = &["major", "critical", "minor"];

/// A field's trimmed text, or nothing when empty.
pub fn opt(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

/// What a window action does inside its unit.
pub enum Action {
    Edit(EditWindow),
    Complete(Close),
    Cancel(Close),
    Incident(ToIncident),
}

/// A window form as posted (fields absent from a form are empty).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct WindowDraft {
    pub title: String,
    pub description: String,
    pub components: Vec<String>,
    /// True when the form carried the component checkboxes (none ticked is then a choice).
    pub has_components: bool,
    /// Local times in the site's zone, as `datetime-local` gives them.
    pub starts_at: String,
    pub ends_at: String,
    /// `duration` or `end`.
    pub end_mode: String,
    pub duration: String,
    pub extend_by: String,
    pub message: String,
    pub owner: String,
    pub reason: String,
    pub impact: String,
    pub action: String,
    /// The fingerprint of the times and components the operator saw the warnings for.
    pub confirm: String,
    pub version: Option<i64>,
    /// What `confirm` must carry to schedule this draft despite its warnings.
    pub fingerprint: String,
}

impl WindowDraft {
    pub fn from_fields(fields: &[(String, String)]) -> Self {
        let mut d = WindowDraft::default();
        for (k, v) in fields {
            match k.as_str() {
                "title" => d.title = v.clone(),
                "description" => d.description = v.clone(),
                "component" => d.components.push(v.trim().to_string()),
                "has_components" => d.has_components = true,
                "starts_at" => d.starts_at = v.clone(),
                "ends_at" => d.ends_at = v.clone(),
                "end_mode" => d.end_mode = v.clone(),
                "duration" => d.duration = v.clone(),
                "extend_by" => d.extend_by = v.clone(),
                "message" => d.message = v.clone(),
                "owner" => d.owner = v.clone(),
                "reason" => d.reason = v.clone(),
                "impact" => d.impact = v.clone(),
                "action" => d.action = v.clone(),
                "confirm" => d.confirm = v.clone(),
                "version" => d.version = v.trim().parse().ok(),
                _ => {}
            }
        }
        d.fingerprint = [
            d.starts_at.trim(),
            d.end_mode.trim(),
            d.duration.trim(),
            d.ends_at.trim(),
            &d.components.join(","),
        ]
        .join("|");
        d
    }

    pub fn start(&self, tz: chrono_tz::Tz) -> Result<DateTime<Utc>, Invalid> {
        local_time("starts_at", &self.starts_at, tz)
    }

    /// The end: a local time, or the start plus a duration.
    pub fn end(&self, start: DateTime<Utc>, tz: chrono_tz::Tz) -> Result<DateTime<Utc>, Invalid> {
        if self.end_mode == "end" {
            local_time("ends_at", &self.ends_at, tz)
        } else {
            let d = parse_duration("duration", &self.duration)?;
            let d = to_chrono(d);
            if d > MAX_WINDOW {
                return Err(Invalid::new("duration", "a window may last at most 7 days"));
            }
            Ok(start + d)
        }
    }

    fn version(&self) -> Result<i64, Invalid> {
        self.version.ok_or_else(|| {
            Invalid::new(
                "version",
                "the form lost the window's version; reload the page",
            )
        })
    }

    /// The edit form: before the start anything may change; after it, the title and
    /// description.
    pub fn edit(&self, tz: chrono_tz::Tz) -> Result<Action, Invalid> {
        let (starts_at, ends_at) = if self.starts_at.trim().is_empty() {
            (None, None)
        } else {
            let s = self.start(tz)?;
            (Some(s), Some(self.end(s, tz)?))
        };
        Ok(Action::Edit(EditWindow {
            title: Some(self.title.clone()),
            // An empty description leaves it as it is (as in the API).
            description: opt(&self.description),
            components: self.has_components.then(|| self.components.clone()),
            starts_at,
            ends_at,
            message: opt(&self.message),
            reason: opt(&self.reason),
            status: None,
            expected_version: Some(self.version()?),
        }))
    }

    /// The extend form: a later end than `planned_end` (a local time or `extend_by`), with the
    /// reason customers are told.
    pub fn extend(&self, planned_end: DateTime<Utc>, tz: chrono_tz::Tz) -> Result<Action, Invalid> {
        let reason = opt(&self.reason).ok_or_else(|| {
            Invalid::new(
                "reason",
                "say why the window needs longer; customers are told",
            )
        })?;
        let ends_at = if opt(&self.extend_by).is_some() {
            planned_end + to_chrono(parse_duration("extend_by", &self.extend_by)?)
        } else {
            local_time("ends_at", &self.ends_at, tz)?
        };
        Ok(Action::Edit(EditWindow {
            ends_at: Some(ends_at),
            reason: Some(reason),
            message: opt(&self.message),
            expected_version: Some(self.version()?),
            ..EditWindow::default()
        }))
    }

    /// The complete and cancel forms.
    pub fn close(&self) -> Result<Close, Invalid> {
        Ok(Close {
            message: opt(&self.message),
            expected_version: Some(self.version()?),
        })
    }

    /// The "it went wrong" form: the window continues as an incident of this impact.
    pub fn to_incident(&self) -> Result<Action, Invalid> {
        let impact: Impact = self.impact.trim().parse().map_err(|_| {
            Invalid::new("impact", format!("expected one of: {}", IMPACTS.join(", ")))
        })?;
        Ok(Action::Incident(ToIncident {
            message: self.message.clone(),
            impact,
            status: IncidentStatus::Investigating,
            components: None,
            expected_version: Some(self.version()?),
        }))
    }
}
