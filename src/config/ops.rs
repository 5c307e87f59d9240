//! `ops:` where the team hears from Candor (reminders, requests for a new estimate).

use std::time::Duration;

use serde::Deserialize;

use super::{de_duration, join, Config, ConfigError};

/// Where the team hears from Candor: reminders before a promised update falls due, and requests
/// for a new estimate when one has passed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpsConfig {
    /// Channel ids (from `channels`) that carry operator notices only, never public updates.
    #[serde(default)]
    pub channels: Vec<String>,
    /// How long before a promised public update the team is reminded to write it.
    #[serde(default = "default_remind", deserialize_with = "de_duration")]
    pub remind_before: Duration,
}

fn default_remind() -> Duration {
    Duration::from_secs(5 * 60)
}

impl Default for OpsConfig {
    fn default() -> Self {
        Self {
            channels: Vec::new(),
            remind_before: default_remind(),
        }
    }
}

impl OpsConfig {
    /// Checks that ops channels name configured channels and leave one for public updates.
    pub(super) fn validate(&self, config: &Config) -> Result<(), ConfigError> {
        for (i, id) in self.channels.iter().enumerate() {
            if !config.channels.contains_key(id) {
                return Err(ConfigError::invalid(
                    format!("ops.channels[{i}]"),
                    format!(
                        "unknown channel `{id}`; expected one of: {}",
                        join(config.channels.keys())
                    ),
                ));
            }
        }
        if config.public_channels().next().is_none() {
            return Err(ConfigError::invalid(
                "ops.channels",
                "every channel is an ops channel; leave at least one for public updates",
            ));
        }
        Ok(())
    }
}
