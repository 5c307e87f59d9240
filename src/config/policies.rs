//! `policies:` how often an open incident of each impact gets a public update.

use std::time::Duration;

use serde::Deserialize;

use super::{de_duration, ConfigError};
use crate::domain::Impact;

/// How often an open incident of each impact gets a public update.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policies {
    #[serde(default = "policy_none")]
    pub none: UpdatePolicy,
    #[serde(default = "policy_minor")]
    pub minor: UpdatePolicy,
    #[serde(default = "policy_major")]
    pub major: UpdatePolicy,
    #[serde(default = "policy_critical")]
    pub critical: UpdatePolicy,
}

impl Policies {
    pub fn for_impact(&self, impact: Impact) -> &UpdatePolicy {
        match impact {
            Impact::None => &self.none,
            Impact::Minor => &self.minor,
            Impact::Major => &self.major,
            Impact::Critical => &self.critical,
        }
    }
}

impl Default for Policies {
    fn default() -> Self {
        Self {
            none: policy_none(),
            minor: policy_minor(),
            major: policy_major(),
            critical: policy_critical(),
        }
    }
}

fn policy(mins: u64) -> UpdatePolicy {
    UpdatePolicy {
        update_every: Duration::from_secs(mins * 60),
    }
}
fn policy_none() -> UpdatePolicy {
    policy(120)
}
fn policy_minor() -> UpdatePolicy {
    policy(60)
}
fn policy_major() -> UpdatePolicy {
    policy(30)
}
fn policy_critical() -> UpdatePolicy {
    policy(15)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdatePolicy {
    /// The longest gap between two public updates; each update promises the next within this.
    #[serde(deserialize_with = "de_duration")]
    pub update_every: Duration,
}

impl Policies {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for (name, p) in [
            ("none", &self.none),
            ("minor", &self.minor),
            ("major", &self.major),
            ("critical", &self.critical),
        ] {
            if p.update_every < Duration::from_secs(60)
                || p.update_every > Duration::from_secs(86_400)
            {
                return Err(ConfigError::invalid(
                    format!("policies.{name}.update_every"),
                    "must be between 1m and 24h",
                ));
            }
        }
        Ok(())
    }
}
