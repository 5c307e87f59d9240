//! `outbox:` how delivery workers poll, hold their claims, retry and give up.

use std::time::Duration;

use serde::Deserialize;

use super::{de_duration, ConfigError};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxConfig {
    /// How often workers look for due deliveries when nothing woke them (other instances' work).
    #[serde(default = "default_poll", deserialize_with = "de_duration")]
    pub poll_interval: Duration,
    /// How long a claimed delivery belongs to its worker; after that another may take it over.
    #[serde(default = "default_lease", deserialize_with = "de_duration")]
    pub lease: Duration,
    /// An optional cap on attempts before a delivery is parked as dead (a channel may set its
    /// own). Unset by default: `retry_for` bounds retries instead, so a long outage loses nothing.
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// How long a delivery that keeps failing with retryable errors is retried (counted from its
    /// creation, or from the last "retry now") before it is parked as dead.
    #[serde(default = "default_retry_for", deserialize_with = "de_duration")]
    pub retry_for: Duration,
    /// First retry delay; each further retry doubles it, with jitter, up to `backoff_max`.
    #[serde(default = "default_backoff_min", deserialize_with = "de_duration")]
    pub backoff_min: Duration,
    #[serde(default = "default_backoff_max", deserialize_with = "de_duration")]
    pub backoff_max: Duration,
}

fn default_poll() -> Duration {
    Duration::from_secs(1)
}
fn default_lease() -> Duration {
    Duration::from_secs(60)
}
fn default_retry_for() -> Duration {
    Duration::from_secs(24 * 3600)
}
fn default_backoff_min() -> Duration {
    Duration::from_secs(2)
}
fn default_backoff_max() -> Duration {
    Duration::from_secs(15 * 60)
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            poll_interval: default_poll(),
            lease: default_lease(),
            max_attempts: None,
            retry_for: default_retry_for(),
            backoff_min: default_backoff_min(),
            backoff_max: default_backoff_max(),
        }
    }
}

impl OutboxConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.poll_interval.is_zero() {
            return Err(ConfigError::invalid(
                "outbox.poll_interval",
                "must be more than 0",
            ));
        }
        if self.max_attempts == Some(0) {
            return Err(ConfigError::invalid(
                "outbox.max_attempts",
                "must be at least 1 (leave it out to bound retries by outbox.retry_for only)",
            ));
        }
        if self.retry_for < self.backoff_min {
            return Err(ConfigError::invalid(
                "outbox.retry_for",
                "must be at least outbox.backoff_min",
            ));
        }
        if self.backoff_min.is_zero() || self.backoff_min > self.backoff_max {
            return Err(ConfigError::invalid(
                "outbox.backoff_min",
                "must be more than 0 and no more than outbox.backoff_max",
            ));
        }
        Ok(())
    }
}
