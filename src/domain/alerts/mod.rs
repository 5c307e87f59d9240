//! Alertmanager's webhook payload (version 4) and what Candor makes of it: which components an
//! alert group affects and how bad it is; `decide` holds what a group's notification does to
//! its incident. Pure: the writing is done by `crate::commands::alerts`.

pub mod decide;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ComponentStatus, Impact};
use crate::config::AlertmanagerConfig;

/// The body Alertmanager's `webhook_config` receiver POSTs, as its documentation gives it.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    /// Must be `"4"`.
    pub version: String,
    /// Identifies the group of alerts; Candor deduplicates by it.
    pub group_key: String,
    /// How many alerts were left out because of `max_alerts`.
    #[serde(default)]
    pub truncated_alerts: i64,
    pub status: GroupStatus,
    pub receiver: String,
    #[serde(default)]
    pub group_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub common_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub common_annotations: BTreeMap<String, String>,
    #[serde(rename = "externalURL", default)]
    pub external_url: String,
    pub alerts: Vec<Alert>,
}

/// `firing` or `resolved`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum GroupStatus {
    Firing,
    Resolved,
}

/// One alert of the group.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    pub status: GroupStatus,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// RFC 3339.
    #[serde(default)]
    pub starts_at: String,
    /// RFC 3339; `0001-01-01T00:00:00Z` while firing.
    #[serde(default)]
    pub ends_at: String,
    #[serde(rename = "generatorURL", default)]
    pub generator_url: String,
    #[serde(default)]
    pub fingerprint: String,
}

impl Notification {
    /// Checks what Candor relies on, naming the field.
    pub fn check(&self) -> Result<(), super::Invalid> {
        if self.version != "4" {
            return Err(super::Invalid::new(
                "version",
                format!(
                    "`{}` is not supported; Candor reads Alertmanager's webhook version 4",
                    crate::channels::truncate(&self.version, 20)
                ),
            ));
        }
        if self.group_key.trim().is_empty() {
            return Err(super::Invalid::new("groupKey", "must not be empty"));
        }
        if self.group_key.len() > 1024 {
            return Err(super::Invalid::new(
                "groupKey",
                "must be at most 1024 bytes",
            ));
        }
        if self.receiver.len() > 200 {
            return Err(super::Invalid::new("receiver", "must be at most 200 bytes"));
        }
        Ok(())
    }

    /// When the group's alerts started: the earliest `startsAt` that parses, never later than
    /// `now` (Alertmanager's clock may run ahead of ours). None when no alert carries one.
    pub fn started_at(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        self.alerts
            .iter()
            .filter_map(|a| chrono::DateTime::parse_from_rfc3339(a.starts_at.trim()).ok())
            .map(|t| t.with_timezone(&chrono::Utc))
            // Go's zero time, which Alertmanager writes for "unset".
            .filter(|t| chrono::Datelike::year(t) > 1)
            .min()
            .map(|t| t.min(now))
    }

    /// The alerts' labels, the group's common labels first: where mapping looks for a label.
    fn label_values<'a>(&'a self, label: &str) -> Vec<&'a str> {
        let mut out: Vec<&str> = Vec::new();
        let all = std::iter::once(&self.common_labels)
            .chain(std::iter::once(&self.group_labels))
            .chain(self.alerts.iter().map(|a| &a.labels));
        for labels in all {
            if let Some(v) = labels.get(label) {
                if !out.contains(&v.as_str()) {
                    out.push(v);
                }
            }
        }
        out
    }
}

/// What an alert group means for customers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapped {
    pub impact: Impact,
    pub components: BTreeMap<String, ComponentStatus>,
    /// Label values that named no component (reported back, logged and told to the team, so
    /// the mapping can be fixed; the incident opens anyway: see `decide`).
    pub unknown: Vec<String>,
}

/// Maps a group to an impact and components by the configured labels. `is_component` says
/// whether an id names a configured component.
pub fn map(
    n: &Notification,
    cfg: &AlertmanagerConfig,
    is_component: impl Fn(&str) -> bool,
) -> Mapped {
    let impact = n
        .label_values(&cfg.impact_label)
        .into_iter()
        .filter_map(|v| cfg.impacts.get(v).copied())
        .max()
        .unwrap_or(cfg.impact);
    let mut components = BTreeMap::new();
    let mut unknown = Vec::new();
    for value in n.label_values(&cfg.component_label) {
        let id = cfg
            .components
            .get(value)
            .map(String::as_str)
            .unwrap_or(value);
        if is_component(id) {
            components.insert(id.to_string(), cfg.component_status);
        } else {
            unknown.push(value.to_string());
        }
    }
    Mapped {
        impact,
        components,
        unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notification(labels: &[(&str, &str)]) -> Notification {
        let labels: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Notification {
            version: "4".into(),
            group_key: "{}:{alertname=\"X\"}".into(),
            truncated_alerts: 0,
            status: GroupStatus::Firing,
            receiver: "candor".into(),
            group_labels: BTreeMap::new(),
            common_labels: BTreeMap::new(),
            common_annotations: BTreeMap::new(),
            external_url: String::new(),
            alerts: vec![Alert {
                status: GroupStatus::Firing,
                labels,
                annotations: BTreeMap::new(),
                starts_at: String::new(),
                ends_at: String::new(),
                generator_url: String::new(),
                fingerprint: String::new(),
            }],
        }
    }

    #[test]
    fn started_at_is_the_earliest_start_never_after_now() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-24T14:00:00Z")
            .unwrap()
            .to_utc();
        let mut n = notification(&[]);
        assert_eq!(n.started_at(now), None, "no startsAt");
        let mut second = n.alerts[0].clone();
        n.alerts[0].starts_at = "2026-11-24T13:52:10.5+01:00".into();
        second.starts_at = "2026-11-24T13:50:00Z".into();
        n.alerts.push(second.clone());
        second.starts_at = "0001-01-01T00:00:00Z".into();
        n.alerts.push(second);
        assert_eq!(
            n.started_at(now).unwrap().to_rfc3339(),
            "2026-11-24T12:52:10.500+00:00"
        );
        n.alerts[0].starts_at = "2026-11-24T15:00:00Z".into();
        n.alerts[1].starts_at = "garbage".into();
        assert_eq!(
            n.started_at(now),
            Some(now),
            "a clock ahead of ours is clamped"
        );
    }

    #[test]
    fn severity_picks_the_impact_and_labels_pick_components() {
        let mut cfg = AlertmanagerConfig::default();
        cfg.components.insert("payments-gw".into(), "api".into());
        let n = notification(&[("severity", "critical"), ("component", "payments-gw")]);
        let m = map(&n, &cfg, |id| id == "api");
        assert_eq!(m.impact, Impact::Major);
        assert_eq!(
            m.components.get("api"),
            Some(&ComponentStatus::PartialOutage)
        );
        assert!(m.unknown.is_empty());

        let n = notification(&[("severity", "info"), ("component", "mainframe")]);
        let m = map(&n, &cfg, |id| id == "api");
        assert_eq!(
            m.impact,
            Impact::Minor,
            "an unmapped severity takes the default"
        );
        assert!(m.components.is_empty());
        assert_eq!(m.unknown, vec!["mainframe".to_string()]);
    }

    #[test]
    fn only_version_4_with_a_group_key_is_accepted() {
        let mut n = notification(&[]);
        assert!(n.check().is_ok());
        n.version = "3".into();
        assert_eq!(n.check().unwrap_err().field, "version");
        n.version = "4".into();
        n.group_key = " ".into();
        assert_eq!(n.check().unwrap_err().field, "groupKey");
    }
}
