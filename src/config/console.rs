//! `console:` the operator console's prepared incident templates.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::{check_id, join, Config, ConfigError};

/// The operator console.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Incident templates the declare form offers, to fill it in one click.
    #[serde(default)]
    pub templates: Vec<IncidentTemplate>,
}

/// A prepared declaration: every field pre-fills the declare form, which the operator still
/// reads, edits and posts.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentTemplate {
    pub id: String,
    /// What the declare form's button says.
    pub name: String,
    pub title: String,
    #[serde(default = "default_template_impact")]
    pub impact: crate::domain::Impact,
    #[serde(default)]
    pub components: BTreeMap<String, crate::domain::ComponentStatus>,
    pub message: String,
    /// A humantime duration (`45m`) for the ETA field; absent means "not known yet".
    #[serde(default)]
    pub eta_in: Option<String>,
    #[serde(default)]
    pub next_update_in: Option<String>,
}

fn default_template_impact() -> crate::domain::Impact {
    crate::domain::Impact::Minor
}

impl ConsoleConfig {
    /// Checks each template: unique ids, non-empty words, known components, valid durations.
    pub(super) fn validate(&self, config: &Config) -> Result<(), ConfigError> {
        let mut ids = BTreeSet::new();
        for (i, t) in self.templates.iter().enumerate() {
            let key = |field: &str| format!("console.templates[{i}].{field}");
            check_id(&key("id"), &t.id)?;
            if !ids.insert(t.id.as_str()) {
                return Err(ConfigError::invalid(
                    key("id"),
                    format!("`{}` is used twice", t.id),
                ));
            }
            for (field, value) in [
                ("name", &t.name),
                ("title", &t.title),
                ("message", &t.message),
            ] {
                if value.trim().is_empty() {
                    return Err(ConfigError::invalid(key(field), "must not be empty"));
                }
            }
            for c in t.components.keys() {
                if config.component(c).is_none() {
                    return Err(ConfigError::invalid(
                        key(&format!("components.{c}")),
                        format!(
                            "unknown component; expected one of: {}",
                            join(config.components.iter().map(|c| &c.id))
                        ),
                    ));
                }
            }
            for (field, value) in [("eta_in", &t.eta_in), ("next_update_in", &t.next_update_in)] {
                if let Some(v) = value {
                    crate::domain::parse_duration(&key(field), v)
                        .map_err(|e| ConfigError::invalid(key(field), e.message))?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{no_env, MINIMAL};
    use super::super::{Config, Overrides};

    #[test]
    fn console_templates_are_checked() {
        let ok = MINIMAL.to_string()
            + "console: { templates: [ { id: api-down, name: API down, title: API errors, impact: major, \
               components: { api: major_outage }, message: Looking., eta_in: 45m } ] }\n";
        let c = Config::from_yaml_with_env(&ok, &Overrides::default(), &no_env).unwrap();
        assert_eq!(c.console.templates[0].impact, crate::domain::Impact::Major);
        for (bad, key) in [
            (
                "components: { billing: major_outage }",
                "console.templates[0].components.billing",
            ),
            ("eta_in: soon", "console.templates[0].eta_in"),
            ("next_update_in: 0s", "console.templates[0].next_update_in"),
        ] {
            let text = MINIMAL.to_string()
                + &format!("console: {{ templates: [ {{ id: t, name: T, title: T, message: M, {bad} }} ] }}\n");
            let err = Config::from_yaml_with_env(&text, &Overrides::default(), &no_env)
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{bad}: {err}");
        }
        let twice = MINIMAL.to_string()
            + "console: { templates: [ { id: t, name: T, title: T, message: M }, { id: t, name: U, title: U, message: M } ] }\n";
        let err = Config::from_yaml_with_env(&twice, &Overrides::default(), &no_env)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("console.templates[1].id") && err.contains("used twice"),
            "{err}"
        );
    }
}
