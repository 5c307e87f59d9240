//! `retention:` settings: how long finished history is kept before a background sweep deletes
//! it, a bounded batch at a time.

use std::time::Duration;

use serde::Deserialize;

use super::{de_duration, ConfigError};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Delivered and dead deliveries of resolved incidents, with their per-recipient email
    /// sends, are deleted this long after they were created.
    #[serde(default = "default_deliveries", deserialize_with = "de_duration")]
    pub deliveries: Duration,
    /// Audit entries are deleted this long after they were written.
    #[serde(default = "default_audit", deserialize_with = "de_duration")]
    pub audit: Duration,
    /// Console sessions this long past their expiry, and sign-in failures this long after the
    /// first one (once any lock has ended), are deleted.
    #[serde(default = "default_sessions", deserialize_with = "de_duration")]
    pub sessions: Duration,
    /// Rows one statement deletes at most; a sweep repeats until a batch comes back short, so
    /// other writers get their turn in between.
    #[serde(default = "default_batch")]
    pub batch: u32,
    /// How often the sweep runs (on each instance running the scheduler).
    #[serde(default = "default_every", deserialize_with = "de_duration")]
    pub every: Duration,
}

const DAY: u64 = 24 * 3600;

fn default_deliveries() -> Duration {
    Duration::from_secs(90 * DAY)
}
fn default_audit() -> Duration {
    Duration::from_secs(365 * DAY)
}
fn default_sessions() -> Duration {
    Duration::from_secs(7 * DAY)
}
fn default_batch() -> u32 {
    1000
}
fn default_every() -> Duration {
    Duration::from_secs(3600)
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            deliveries: default_deliveries(),
            audit: default_audit(),
            sessions: default_sessions(),
            batch: default_batch(),
            every: default_every(),
        }
    }
}

impl RetentionConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (key, d) in [
            ("retention.deliveries", self.deliveries),
            ("retention.audit", self.audit),
            ("retention.sessions", self.sessions),
        ] {
            if d < Duration::from_secs(3600) {
                return Err(ConfigError::invalid(key, "must be at least 1h"));
            }
        }
        if !(1..=100_000).contains(&self.batch) {
            return Err(ConfigError::invalid(
                "retention.batch",
                "must be between 1 and 100000",
            ));
        }
        if self.every < Duration::from_secs(1) {
            return Err(ConfigError::invalid(
                "retention.every",
                "must be at least 1s",
            ));
        }
        Ok(())
    }
}
