//! `alertmanager:` what Alertmanager's alert groups do to incidents.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{join, Config, ConfigError};
use crate::domain::Impact;

/// What `POST /api/v1/integrations/alertmanager` does with Alertmanager's alert groups.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    /// When no group attached to an incident fires any more (in whatever order they
    /// resolved): `confirm` (the default) tells the ops channels once and leaves the incident
    /// open for a person to resolve; `resolve` resolves it if Alertmanager opened it (a
    /// person's incident is never resolved by Alertmanager: the team is asked instead).
    #[serde(default)]
    pub on_resolved: OnResolved,
    /// The impact of an incident Alertmanager opens, unless `impacts` maps the alert's
    /// `impact_label`.
    #[serde(default = "default_alert_impact")]
    pub impact: Impact,
    /// The label whose value picks the impact through `impacts`.
    #[serde(default = "default_impact_label")]
    pub impact_label: String,
    /// Label value to impact, e.g. `{critical: major, warning: minor}`.
    #[serde(default = "default_alert_impacts")]
    pub impacts: BTreeMap<String, Impact>,
    /// The label naming the affected component (a component id, or a key of `components`). A
    /// value naming neither does not stop the incident (it opens with the components that
    /// matched); Candor logs a warning and tells the ops channels which value matched nothing.
    #[serde(default = "default_component_label")]
    pub component_label: String,
    /// Label value to component id, for labels that do not use Candor's ids.
    #[serde(default)]
    pub components: BTreeMap<String, String>,
    /// The status affected components get.
    #[serde(default = "default_alert_component_status")]
    pub component_status: crate::domain::ComponentStatus,
    /// Templates (minijinja) of the public title and first message, and of the all-clear. They
    /// see the payload's fields: `groupLabels`, `commonLabels`, `commonAnnotations`, `alerts`,
    /// `status`, `externalURL`, plus `components` (the affected components' names, joined).
    /// They are published: keep internal host names out of them.
    #[serde(default = "default_alert_title")]
    pub title: String,
    #[serde(default = "default_alert_message")]
    pub message: String,
    #[serde(default = "default_alert_resolved_message")]
    pub resolved_message: String,
    /// Who is named as owner of incidents Alertmanager opens.
    #[serde(default)]
    pub owner: Option<String>,
}

/// What a resolved alert group does to its incident.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnResolved {
    #[default]
    Confirm,
    Resolve,
}

fn default_alert_impact() -> Impact {
    Impact::Minor
}
fn default_impact_label() -> String {
    "severity".into()
}
fn default_alert_impacts() -> BTreeMap<String, Impact> {
    [("critical", Impact::Major), ("warning", Impact::Minor)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}
fn default_component_label() -> String {
    "component".into()
}
fn default_alert_component_status() -> crate::domain::ComponentStatus {
    crate::domain::ComponentStatus::PartialOutage
}
fn default_alert_title() -> String {
    "{{ commonAnnotations.summary or 'Service disruption' }}".into()
}
fn default_alert_message() -> String {
    "Our monitoring has detected a problem{% if components %} with {{ components }}{% endif %}. \
     We are looking into it now."
        .into()
}
fn default_alert_resolved_message() -> String {
    "Our monitoring shows {% if components %}{{ components }} working{% else %}everything \
     working{% endif %} normally again. We are sorry for the trouble."
        .into()
}

impl Default for AlertmanagerConfig {
    fn default() -> Self {
        Self {
            on_resolved: OnResolved::default(),
            impact: default_alert_impact(),
            impact_label: default_impact_label(),
            impacts: default_alert_impacts(),
            component_label: default_component_label(),
            components: BTreeMap::new(),
            component_status: default_alert_component_status(),
            title: default_alert_title(),
            message: default_alert_message(),
            resolved_message: default_alert_resolved_message(),
            owner: None,
        }
    }
}

impl AlertmanagerConfig {
    pub(super) fn validate(&self, config: &Config) -> Result<(), ConfigError> {
        for (value, id) in &self.components {
            if config.component(id).is_none() {
                return Err(ConfigError::invalid(
                    format!("alertmanager.components.{value}"),
                    format!(
                        "unknown component `{id}`; expected one of: {}",
                        join(config.components.iter().map(|c| &c.id))
                    ),
                ));
            }
        }
        let env = minijinja::Environment::new();
        for (key, source) in [
            ("alertmanager.title", &self.title),
            ("alertmanager.message", &self.message),
            ("alertmanager.resolved_message", &self.resolved_message),
        ] {
            if let Err(e) = env.template_from_str(source) {
                return Err(ConfigError::invalid(
                    key,
                    format!("not a valid template: {e}"),
                ));
            }
        }
        Ok(())
    }
}
