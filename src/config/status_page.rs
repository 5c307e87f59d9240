//! `status_page:` settings: how the public pages are cached and refreshed.

use std::time::Duration;

use serde::Deserialize;

use super::{de_duration, ConfigError};

/// How the public pages are cached and refreshed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusPageConfig {
    /// How often each instance checks the database for changes made elsewhere (another
    /// instance); changes made here show at once.
    #[serde(default = "default_refresh", deserialize_with = "de_duration")]
    pub refresh: Duration,
    /// `Cache-Control: max-age` for pages, feeds and JSON (what CDNs and browsers may reuse).
    #[serde(default = "default_max_age", deserialize_with = "de_duration")]
    pub max_age: Duration,
}

fn default_refresh() -> Duration {
    Duration::from_millis(500)
}
fn default_max_age() -> Duration {
    Duration::from_secs(10)
}

impl Default for StatusPageConfig {
    fn default() -> Self {
        Self {
            refresh: default_refresh(),
            max_age: default_max_age(),
        }
    }
}

impl StatusPageConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.refresh < Duration::from_millis(50) || self.refresh > Duration::from_secs(60) {
            return Err(ConfigError::invalid(
                "status_page.refresh",
                "must be between 50ms and 60s",
            ));
        }
        Ok(())
    }
}
