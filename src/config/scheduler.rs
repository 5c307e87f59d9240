//! `scheduler:` how often the scheduler asks what is due.

use std::time::Duration;

use serde::Deserialize;

use super::{de_duration, ConfigError};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulerConfig {
    /// How often the scheduler checks what is due.
    #[serde(default = "default_tick", deserialize_with = "de_duration")]
    pub tick: Duration,
}

fn default_tick() -> Duration {
    Duration::from_secs(1)
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            tick: default_tick(),
        }
    }
}

impl SchedulerConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.tick.is_zero() || self.tick > Duration::from_secs(60) {
            return Err(ConfigError::invalid(
                "scheduler.tick",
                "must be between 1ms and 60s",
            ));
        }
        Ok(())
    }
}
