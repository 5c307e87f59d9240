//! `database:` settings: which database (SQLite or PostgreSQL) and how many connections.

use serde::Deserialize;

use super::{ConfigError, Secret};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://path/to/file.db` (created on first run) or `postgres://user:pass@host/db`.
    #[serde(default = "default_db_url")]
    pub url: Secret,
    /// Connections for requests, the console and the scheduler. On PostgreSQL the delivery
    /// workers open `store::WORKER_CONNECTIONS` more of their own.
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
}

fn default_db_url() -> Secret {
    Secret::new("sqlite://candor.db")
}
fn default_max_connections() -> u32 {
    8
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: default_db_url(),
            max_connections: default_max_connections(),
        }
    }
}

impl DatabaseConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let url = self.url.expose();
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres:")
            || url.starts_with("postgresql:"))
        {
            return Err(ConfigError::invalid(
                "database.url",
                "must start with `sqlite:` or `postgres://`",
            ));
        }
        if self.max_connections == 0 {
            return Err(ConfigError::invalid(
                "database.max_connections",
                "must be at least 1",
            ));
        }
        Ok(())
    }
}
