//! `maintenance:` settings: when advance notices go out, recurring windows, and peak hours.

use std::time::Duration;

use chrono::{NaiveTime, Weekday};
use serde::{Deserialize, Deserializer};

use super::{check_id, de_duration, de_tz, Config, ConfigError};
use crate::domain::maintenance::{parse_cron, PeakHours};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceConfig {
    /// How long before a window's start each advance notice goes out (besides the announcement
    /// when it is scheduled, the start and the end).
    #[serde(default = "default_notices", deserialize_with = "de_durations")]
    pub notices: Vec<Duration>,
    /// How far ahead recurring windows are materialised (and so announced).
    #[serde(default = "default_horizon", deserialize_with = "de_duration")]
    pub horizon: Duration,
    #[serde(default)]
    pub recurring: Vec<RecurringWindow>,
    #[serde(default)]
    pub peak_hours: Vec<PeakHoursConfig>,
}

/// A window that repeats: "every Sunday 02:00 Europe/London for 2h".
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecurringWindow {
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub components: Vec<String>,
    /// Five fields, as crontab writes them: minute hour day-of-month month day-of-week.
    pub cron: String,
    #[serde(deserialize_with = "de_tz")]
    pub time_zone: chrono_tz::Tz,
    #[serde(deserialize_with = "de_duration")]
    pub duration: Duration,
}

impl RecurringWindow {
    pub fn schedule(&self, key: &str) -> Result<cron::Schedule, crate::domain::Invalid> {
        parse_cron(key, &self.cron)
    }
}

/// A service's busy hours, in which maintenance is warned against.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeakHoursConfig {
    pub name: String,
    /// Weekday names: mon, tue, ... (or `all`).
    pub days: Vec<String>,
    /// `HH:MM` local time; `to` at or before `from` runs past midnight.
    pub from: String,
    pub to: String,
    #[serde(deserialize_with = "de_tz")]
    pub time_zone: chrono_tz::Tz,
    /// Components these hours concern (empty: all).
    #[serde(default)]
    pub components: Vec<String>,
}

impl PeakHoursConfig {
    /// The checked form (validated at load, so this only fails on a config never validated).
    pub fn hours(&self, key: &str) -> Result<PeakHours, ConfigError> {
        let time = |field: &str, s: &str| {
            NaiveTime::parse_from_str(s.trim(), "%H:%M").map_err(|_| {
                ConfigError::invalid(
                    format!("{key}.{field}"),
                    format!("`{s}` is not a time; write it like `09:00`"),
                )
            })
        };
        let mut days = Vec::new();
        for (i, d) in self.days.iter().enumerate() {
            if d.eq_ignore_ascii_case("all") {
                days.extend([
                    Weekday::Mon,
                    Weekday::Tue,
                    Weekday::Wed,
                    Weekday::Thu,
                    Weekday::Fri,
                    Weekday::Sat,
                    Weekday::Sun,
                ]);
                continue;
            }
            days.push(d.parse::<Weekday>().map_err(|_| {
                ConfigError::invalid(
                    format!("{key}.days[{i}]"),
                    format!("`{d}` is not a weekday; write mon, tue, ... sun or all"),
                )
            })?);
        }
        if days.is_empty() {
            return Err(ConfigError::invalid(
                format!("{key}.days"),
                "name at least one day",
            ));
        }
        Ok(PeakHours {
            name: self.name.clone(),
            days,
            from: time("from", &self.from)?,
            to: time("to", &self.to)?,
            zone: self.time_zone,
        })
    }
}

fn de_durations<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
    let raw = Vec::<String>::deserialize(d)?;
    raw.iter()
        .map(|s| {
            humantime::parse_duration(s.trim()).map_err(|e| {
                serde::de::Error::custom(format!(
                    "`{s}` is not a duration ({e}); write it like `24h` or `1h`"
                ))
            })
        })
        .collect()
}

fn default_notices() -> Vec<Duration> {
    vec![Duration::from_secs(86_400), Duration::from_secs(3_600)]
}
fn default_horizon() -> Duration {
    Duration::from_secs(14 * 86_400)
}

impl Default for MaintenanceConfig {
    fn default() -> Self {
        Self {
            notices: default_notices(),
            horizon: default_horizon(),
            recurring: Vec::new(),
            peak_hours: Vec::new(),
        }
    }
}

impl MaintenanceConfig {
    pub(super) fn validate(&self, config: &Config) -> Result<(), ConfigError> {
        for (i, n) in self.notices.iter().enumerate() {
            if n.is_zero() || *n > Duration::from_secs(30 * 86_400) {
                return Err(ConfigError::invalid(
                    format!("maintenance.notices[{i}]"),
                    "must be more than 0 and at most 30 days",
                ));
            }
        }
        if self.horizon < Duration::from_secs(3_600)
            || self.horizon > Duration::from_secs(90 * 86_400)
        {
            return Err(ConfigError::invalid(
                "maintenance.horizon",
                "must be between 1h and 90 days",
            ));
        }
        let check_components = |key: String, list: &[String]| {
            for (j, c) in list.iter().enumerate() {
                if config.component(c).is_none() {
                    return Err(ConfigError::invalid(
                        format!("{key}.components[{j}]"),
                        format!("unknown component `{c}`"),
                    ));
                }
            }
            Ok(())
        };
        let mut ids = std::collections::BTreeSet::new();
        for (i, r) in self.recurring.iter().enumerate() {
            let key = format!("maintenance.recurring[{i}]");
            check_id(&format!("{key}.id"), &r.id)?;
            if !ids.insert(r.id.as_str()) {
                return Err(ConfigError::invalid(
                    format!("{key}.id"),
                    format!("`{}` is used twice", r.id),
                ));
            }
            if r.title.trim().is_empty() || r.title.chars().count() > crate::domain::MAX_TITLE {
                return Err(ConfigError::invalid(
                    format!("{key}.title"),
                    "must be 1-200 characters",
                ));
            }
            r.schedule(&format!("{key}.cron"))
                .map_err(|e| ConfigError::invalid(e.field, e.message))?;
            if r.duration < Duration::from_secs(60) || r.duration > Duration::from_secs(7 * 86_400)
            {
                return Err(ConfigError::invalid(
                    format!("{key}.duration"),
                    "must be between 1m and 7 days",
                ));
            }
            check_components(key, &r.components)?;
        }
        for (i, p) in self.peak_hours.iter().enumerate() {
            let key = format!("maintenance.peak_hours[{i}]");
            p.hours(&key)?;
            check_components(key, &p.components)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::MINIMAL as BASE;
    use super::super::{Config, Overrides};

    fn load(extra: &str) -> Result<Config, String> {
        Config::from_yaml_with_env(&format!("{BASE}{extra}"), &Overrides::default(), &|_| None)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_24h_and_1h_notices() {
        let c = load("").unwrap();
        assert_eq!(
            c.maintenance.notices,
            [
                std::time::Duration::from_secs(86_400),
                std::time::Duration::from_secs(3_600)
            ]
        );
    }

    #[test]
    fn bad_maintenance_settings_name_their_key() {
        let recurring = |field: &str| {
            let entry = format!(
                "{{ id: weekly, title: T, cron: \"0 2 * * SUN\", time_zone: Europe/London, duration: 2h, {field} }}"
            );
            format!("maintenance: {{ recurring: [ {entry} ] }}\n")
        };
        for (extra, key, word) in [
            (
                "maintenance: { recurring: [ { id: weekly, title: T, cron: \"0 0 2 * * SUN\", time_zone: Europe/London, duration: 2h } ] }\n".to_string(),
                "maintenance.recurring[0].cron",
                "6 fields",
            ),
            (recurring("components: [db]"), "maintenance.recurring[0].components[0]", "db"),
            (
                "maintenance: { recurring: [ { id: w, title: T, cron: \"0 2 * * SUN\", time_zone: Mars/Base, duration: 2h } ] }\n".to_string(),
                "time_zone",
                "Mars/Base",
            ),
            (
                "maintenance: { peak_hours: [ { name: P, days: [funday], from: \"09:00\", to: \"17:00\", time_zone: UTC } ] }\n".to_string(),
                "maintenance.peak_hours[0].days[0]",
                "funday",
            ),
            (
                "maintenance: { peak_hours: [ { name: P, days: [mon], from: \"9am\", to: \"17:00\", time_zone: UTC } ] }\n".to_string(),
                "maintenance.peak_hours[0].from",
                "9am",
            ),
            ("maintenance: { notices: [soon] }\n".to_string(), "maintenance.notices", "soon"),
            ("maintenance: { horizon: 1m }\n".to_string(), "maintenance.horizon", "1h"),
        ] {
            let err = load(&extra).unwrap_err();
            assert!(err.contains(key) && err.contains(word), "expected `{key}` and `{word}` in: {err}");
        }
    }
}
