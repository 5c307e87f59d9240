//! `inbox:` customers' replies and mentions, read from the Mastodon and Bluesky channels named
//! here (see `src/inbox/`).

use std::time::Duration;

use serde::Deserialize;

use super::{de_duration, join, ChannelConfig, Config, ConfigError};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboxConfig {
    /// Mastodon or Bluesky channel ids whose account's notifications are read. None: no inbox.
    /// (Mastodon's token needs `read:notifications` and `read:statuses` besides
    /// `write:statuses`.)
    #[serde(default)]
    pub channels: Vec<String>,
    /// How often each channel is asked for new notifications (a network's rate limit, when it
    /// says so, spaces polls further).
    #[serde(default = "default_poll_every", deserialize_with = "de_duration")]
    pub poll_every: Duration,
    /// A conversation nobody claimed this long after its first post is flagged on the dashboard
    /// and told, once, to the ops channels.
    #[serde(default = "default_unclaimed_after", deserialize_with = "de_duration")]
    pub unclaimed_after: Duration,
    /// Inbound posts kept per incident; later ones are counted, not kept.
    #[serde(default = "default_max_items")]
    pub max_items_per_incident: u32,
}

fn default_poll_every() -> Duration {
    Duration::from_secs(60)
}
fn default_unclaimed_after() -> Duration {
    Duration::from_secs(15 * 60)
}
fn default_max_items() -> u32 {
    500
}

impl Default for InboxConfig {
    fn default() -> Self {
        Self {
            channels: Vec::new(),
            poll_every: default_poll_every(),
            unclaimed_after: default_unclaimed_after(),
            max_items_per_incident: default_max_items(),
        }
    }
}

impl InboxConfig {
    /// Each listened channel must be a configured Mastodon or Bluesky channel.
    pub(super) fn validate(&self, config: &Config) -> Result<(), ConfigError> {
        for (i, id) in self.channels.iter().enumerate() {
            match config.channels.get(id) {
                Some(ChannelConfig::Mastodon { .. } | ChannelConfig::Bluesky { .. }) => {}
                Some(other) => {
                    return Err(ConfigError::invalid(
                        format!("inbox.channels[{i}]"),
                        format!(
                            "channel `{id}` is a {} channel; only mastodon and bluesky channels \
                             have an inbox",
                            other.kind()
                        ),
                    ))
                }
                None => {
                    return Err(ConfigError::invalid(
                        format!("inbox.channels[{i}]"),
                        format!(
                            "unknown channel `{id}`; expected one of: {}",
                            join(config.channels.keys())
                        ),
                    ))
                }
            }
        }
        if self.poll_every < Duration::from_secs(1) {
            return Err(ConfigError::invalid(
                "inbox.poll_every",
                "must be at least 1s",
            ));
        }
        if self.max_items_per_incident == 0 {
            return Err(ConfigError::invalid(
                "inbox.max_items_per_incident",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}
