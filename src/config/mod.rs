//! Typed settings, read from YAML (serde_yaml is confined to this module).
//!
//! Loading happens in three steps: parse the YAML into a tree, replace `${VAR}` (or
//! `${VAR:-default}`) in string values from the environment (`interpolate.rs`), then deserialize
//! into [`Config`] with unknown keys refused. Every error names the key it is about. Secrets are
//! held in [`Secret`], whose `Debug` and `Display` never show the value.
//!
//! One file per section of the file (`site.rs`, `channels/`, ...), each with its own checks;
//! this one holds the whole [`Config`], loading, the command line's overrides and the order in
//! which sections are checked.

pub mod alertmanager;
pub mod channels;
pub mod components;
pub mod console;
pub mod database;
pub mod honesty;
pub mod inbox;
mod interpolate;
pub mod maintenance;
pub mod mirrors;
pub mod ops;
pub mod outbox;
pub mod policies;
pub mod retention;
pub mod scheduler;
pub mod server;
pub mod site;
pub mod status_page;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

pub use alertmanager::{AlertmanagerConfig, OnResolved};
pub use channels::{ChannelConfig, ChannelFilter, ChannelLimits, DkimConfig, EmailConfig};
pub use components::{ComponentConfig, GroupConfig};
pub use console::{ConsoleConfig, IncidentTemplate};
pub use database::DatabaseConfig;
pub use honesty::HonestyConfig;
pub use inbox::InboxConfig;
pub use maintenance::MaintenanceConfig;
pub use mirrors::{MirrorTarget, MirrorsConfig};
pub use ops::OpsConfig;
pub use outbox::OutboxConfig;
pub use policies::{Policies, UpdatePolicy};
pub use retention::RetentionConfig;
pub use scheduler::SchedulerConfig;
pub use server::ServerConfig;
pub use site::{Colours, FooterLink, SiteConfig};
pub use status_page::StatusPageConfig;

/// A configuration problem, naming the key it is about.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The cause is in the message (not a `source`, which would print it twice); a missing file
    /// says how to make one.
    #[error("cannot read config file {}: {error}{}", path.display(), if error.kind() == std::io::ErrorKind::NotFound {
        " (write one with `candor init`, or name another with --config or CANDOR_CONFIG)"
    } else {
        ""
    })]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("config file is not valid YAML: {0}")]
    Syntax(String),
    #[error("config key `{key}`: {message}")]
    Invalid { key: String, message: String },
}

impl ConfigError {
    fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// A secret value (password, token). Never printed.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(s.trim()).map_err(|e| {
        serde::de::Error::custom(format!(
            "`{s}` is not a duration ({e}); write it like `90s`, `45m` or `2h`"
        ))
    })
}

fn de_tz<'de, D: Deserializer<'de>>(d: D) -> Result<chrono_tz::Tz, D::Error> {
    let s = String::deserialize(d)?;
    s.parse::<chrono_tz::Tz>().map_err(|_| {
        serde::de::Error::custom(format!(
            "`{s}` is not an IANA time zone name; write it like `UTC` or `Europe/London`"
        ))
    })
}

fn de_url<'de, D: Deserializer<'de>>(d: D) -> Result<url::Url, D::Error> {
    let s = String::deserialize(d)?;
    let u = url::Url::parse(&s).map_err(|e| {
        serde::de::Error::custom(format!(
            "`{s}` is not an absolute URL ({e}); write it like `https://status.example.com`"
        ))
    })?;
    if u.scheme() != "http" && u.scheme() != "https" {
        return Err(serde::de::Error::custom(format!(
            "`{s}` must be an http or https URL"
        )));
    }
    Ok(u)
}

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub site: SiteConfig,
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub database: DatabaseConfig,
    #[serde(default)]
    pub groups: Vec<GroupConfig>,
    pub components: Vec<ComponentConfig>,
    #[serde(default)]
    pub policies: Policies,
    #[serde(default)]
    pub scheduler: SchedulerConfig,
    #[serde(default)]
    pub outbox: OutboxConfig,
    #[serde(default)]
    pub ops: OpsConfig,
    #[serde(default)]
    pub status_page: StatusPageConfig,
    #[serde(default)]
    pub maintenance: MaintenanceConfig,
    #[serde(default)]
    pub console: ConsoleConfig,
    pub channels: BTreeMap<String, ChannelConfig>,
    #[serde(default)]
    pub alertmanager: AlertmanagerConfig,
    /// What the check before publishing warns about.
    #[serde(default)]
    pub honesty: HonestyConfig,
    /// How long finished history is kept (see `config/retention.rs`).
    #[serde(default)]
    pub retention: RetentionConfig,
    /// Customers' replies and mentions (see `config/inbox.rs`).
    #[serde(default)]
    pub inbox: InboxConfig,
    /// Static copies of the public site (see `config/mirrors.rs`).
    #[serde(default)]
    pub mirrors: MirrorsConfig,
}

#[derive(Debug, Clone, Default)]
/// Values given on the command line or in the environment that override the file.
pub struct Overrides {
    pub database_url: Option<String>,
    pub listen: Option<SocketAddr>,
}

impl Config {
    /// Reads, interpolates, parses and validates a config file.
    pub fn load(path: &Path, overrides: &Overrides) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        Self::from_yaml_with_env(&text, overrides, &|name| std::env::var(name).ok())
    }

    /// Parses YAML text, reading `${VAR}` values through `env`.
    pub fn from_yaml_with_env(
        text: &str,
        overrides: &Overrides,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut tree: serde_yaml::Value =
            serde_yaml::from_str(text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
        interpolate::interpolate(&mut tree, "", env)?;
        let public_url_given = tree
            .get("site")
            .and_then(|site| site.get("public_url"))
            .is_some_and(|u| !u.is_null());
        let mut config: Config = serde_path_to_error::deserialize(tree).map_err(|e| {
            let key = e.path().to_string();
            let key = if key == "." {
                "(top level)".to_string()
            } else {
                key
            };
            ConfigError::invalid(key, e.into_inner().to_string())
        })?;
        if let Some(url) = &overrides.database_url {
            config.database.url = Secret::new(url.clone());
        }
        config.site.public_url_follows_listen = !public_url_given;
        let listen = overrides.listen.unwrap_or(config.server.listen);
        config.set_listen(listen);
        config.validate()?;
        Ok(config)
    }

    /// Sets the address `serve` listens on (the one actually bound, when the file asked for
    /// port 0); `site.public_url` follows it unless the file set one.
    pub fn set_listen(&mut self, listen: SocketAddr) {
        self.server.listen = listen;
        if self.site.public_url_follows_listen {
            self.site.public_url = server::url_of(listen);
        }
    }

    /// `check-config`'s warning when `site.public_url` names this machine but another port than
    /// `server.listen`: every link in every message would then point at nothing (or at
    /// something else).
    pub fn public_url_warning(&self) -> Option<String> {
        if self.site.public_url_follows_listen {
            return None;
        }
        let url = &self.site.public_url;
        let loopback = match url.host()? {
            url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
            url::Host::Ipv4(ip) => ip.is_loopback(),
            url::Host::Ipv6(ip) => ip.is_loopback(),
        };
        let port = url.port_or_known_default()?;
        let listen = self.server.listen.port();
        (loopback && port != listen).then(|| {
            format!(
                "site.public_url `{url}` points at port {port} on this machine, but the server \
                 listens on {}: links in messages and pages will not reach it. Leave \
                 site.public_url out to follow the listen address, or make the two agree.",
                self.server.listen
            )
        })
    }

    /// Checks what types alone cannot: references between keys, ranges, uniqueness. Each
    /// section checks its own keys (beside its struct); the first problem found is reported.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.site.validate()?;
        self.status_page.validate()?;
        self.database.validate()?;
        self.server.validate()?;
        components::validate(&self.groups, &self.components)?;
        self.policies.validate()?;
        self.scheduler.validate()?;
        self.outbox.validate()?;
        self.maintenance.validate(self)?;
        self.honesty.validate()?;
        self.retention.validate()?;
        channels::validate(self)?;
        self.ops.validate(self)?;
        self.alertmanager.validate(self)?;
        self.inbox.validate(self)?;
        self.mirrors.validate()?;
        self.console.validate(self)
    }

    /// The email channel subscribers sign up for, if one is configured (there is at most one).
    pub fn email_channel(&self) -> Option<(&str, &EmailConfig)> {
        self.channels.iter().find_map(|(id, c)| match c {
            ChannelConfig::Email(e) => Some((id.as_str(), &**e)),
            _ => None,
        })
    }

    /// Channels that carry public updates: all but the ops channels.
    pub fn public_channels(&self) -> impl Iterator<Item = &str> {
        self.channels
            .keys()
            .map(String::as_str)
            .filter(|id| !self.ops.channels.iter().any(|o| o == id))
    }

    pub fn component(&self, id: &str) -> Option<&ComponentConfig> {
        self.components.iter().find(|c| c.id == id)
    }

    /// A component's display name; its id when no component has it (one removed from the
    /// config since an old incident named it).
    pub fn component_name(&self, id: &str) -> String {
        self.component(id)
            .map(|c| c.name.clone())
            .unwrap_or_else(|| id.to_string())
    }
}

fn join<'a>(items: impl Iterator<Item = &'a (impl AsRef<str> + ?Sized + 'a)>) -> String {
    let v: Vec<String> = items.map(|s| format!("`{}`", s.as_ref())).collect();
    if v.is_empty() {
        "(none defined)".into()
    } else {
        v.join(", ")
    }
}

fn check_id(key: &str, id: &str) -> Result<(), ConfigError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            key,
            format!("`{id}` is not a valid id; use 1-64 lowercase letters, digits, `-` or `_`"),
        ))
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    /// The smallest valid file: one component, the log channel.
    pub(crate) const MINIMAL: &str = r#"
site: { name: Acme, public_url: "https://status.acme.test", support_contact: help@acme.test }
components: [ { id: api, name: API } ]
channels: { log: { type: log } }
"#;

    pub(crate) fn no_env(_: &str) -> Option<String> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{no_env, MINIMAL};
    use super::*;

    #[test]
    fn minimal_config_gets_sensible_defaults() {
        let c = Config::from_yaml_with_env(MINIMAL, &Overrides::default(), &no_env).unwrap();
        assert_eq!(c.policies.critical.update_every, Duration::from_secs(900));
        assert_eq!(c.server.listen.port(), 8080);
        assert_eq!(c.database.url.expose(), "sqlite://candor.db");
        assert_eq!(c.public_channels().collect::<Vec<_>>(), vec!["log"]);
    }

    #[test]
    fn a_missing_file_is_named_once_with_a_hint() {
        let err =
            Config::load(Path::new("/nonexistent/candor.yaml"), &Overrides::default()).unwrap_err();
        let text = format!("{:#}", anyhow::Error::from(err));
        assert_eq!(text.matches("No such file").count(), 1, "{text}");
        assert!(
            text.contains("/nonexistent/candor.yaml") && text.contains("candor init"),
            "{text}"
        );
    }

    #[test]
    fn unknown_key_is_named() {
        let text = MINIMAL.replace("support_contact", "suport_contact");
        let err = Config::from_yaml_with_env(&text, &Overrides::default(), &no_env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("site"), "{err}");
        assert!(err.contains("suport_contact"), "{err}");
    }

    #[test]
    fn unknown_key_inside_a_channel_is_named() {
        let text = MINIMAL.replace("{ type: log }", "{ type: log, colour: red }");
        let err = Config::from_yaml_with_env(&text, &Overrides::default(), &no_env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("channels.log"), "{err}");
        assert!(err.contains("colour"), "{err}");
    }

    #[test]
    fn bad_duration_names_key_and_form() {
        let text = format!("{MINIMAL}\npolicies: {{ major: {{ update_every: soon }} }}\n");
        let err = Config::from_yaml_with_env(&text, &Overrides::default(), &no_env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("policies.major.update_every"), "{err}");
        assert!(err.contains("45m"), "{err}");
    }

    #[test]
    fn secrets_do_not_show_in_debug() {
        let text = MINIMAL.to_string() + "database: { url: \"postgres://u:hunter2@db/x\" }\n";
        let c = Config::from_yaml_with_env(&text, &Overrides::default(), &no_env).unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn references_are_checked() {
        let text = MINIMAL.replace(
            "{ id: api, name: API }",
            "{ id: api, name: API, group: core }",
        );
        let err = Config::from_yaml_with_env(&text, &Overrides::default(), &no_env)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("components[0].group") && err.contains("core"),
            "{err}"
        );
        let text = MINIMAL.to_string() + "ops: { channels: [pager] }\n";
        let err = Config::from_yaml_with_env(&text, &Overrides::default(), &no_env)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ops.channels[0]") && err.contains("pager"),
            "{err}"
        );
    }

    #[test]
    fn overrides_win() {
        let o = Overrides {
            database_url: Some("sqlite://other.db".into()),
            listen: Some("127.0.0.1:9999".parse().unwrap()),
        };
        let c = Config::from_yaml_with_env(MINIMAL, &o, &no_env).unwrap();
        assert_eq!(c.database.url.expose(), "sqlite://other.db");
        assert_eq!(c.server.listen.port(), 9999);
    }

    #[test]
    fn public_url_left_out_follows_the_listen_address() {
        let text = MINIMAL.replace(r#"public_url: "https://status.acme.test", "#, "");
        let c = Config::from_yaml_with_env(&text, &Overrides::default(), &no_env).unwrap();
        assert!(c.site.public_url_follows_listen);
        assert_eq!(c.site.public_url.as_str(), "http://127.0.0.1:8080/");
        let o = Overrides {
            listen: Some("127.0.0.1:9000".parse().unwrap()),
            ..Overrides::default()
        };
        let mut c = Config::from_yaml_with_env(&text, &o, &no_env).unwrap();
        assert_eq!(c.site.public_url.as_str(), "http://127.0.0.1:9000/");
        // Serving on every address: links name this machine's loopback address.
        c.set_listen("0.0.0.0:9001".parse().unwrap());
        assert_eq!(c.site.public_url.as_str(), "http://127.0.0.1:9001/");
        c.set_listen("[::]:9002".parse().unwrap());
        assert_eq!(c.site.public_url.as_str(), "http://[::1]:9002/");
        assert_eq!(c.public_url_warning(), None);
    }

    #[test]
    fn a_public_url_that_is_set_wins_over_listen() {
        let o = Overrides {
            listen: Some("127.0.0.1:9000".parse().unwrap()),
            ..Overrides::default()
        };
        let c = Config::from_yaml_with_env(MINIMAL, &o, &no_env).unwrap();
        assert!(!c.site.public_url_follows_listen);
        assert_eq!(c.site.public_url.as_str(), "https://status.acme.test/");
        // Another host: no warning (a proxy in front is the usual case).
        assert_eq!(c.public_url_warning(), None);
    }

    #[test]
    fn check_config_warns_when_a_loopback_public_url_misses_the_listen_port() {
        let text = MINIMAL.replace("https://status.acme.test", "http://localhost:8080");
        let o = Overrides {
            listen: Some("127.0.0.1:9000".parse().unwrap()),
            ..Overrides::default()
        };
        let c = Config::from_yaml_with_env(&text, &o, &no_env).unwrap();
        let w = c.public_url_warning().expect("a warning");
        assert!(w.contains("8080") && w.contains("127.0.0.1:9000"), "{w}");
        // Same port: nothing to say.
        let c = Config::from_yaml_with_env(&text, &Overrides::default(), &no_env).unwrap();
        assert_eq!(c.public_url_warning(), None);
        // 127.0.0.1 without a port means port 80.
        let text = MINIMAL.replace("https://status.acme.test", "http://127.0.0.1");
        let c = Config::from_yaml_with_env(&text, &Overrides::default(), &no_env).unwrap();
        assert!(c.public_url_warning().unwrap().contains("port 80 "));
    }

    #[test]
    fn the_shipped_config_is_valid() {
        let text = include_str!("../../config/candor.yaml");
        Config::from_yaml_with_env(text, &Overrides::default(), &no_env).unwrap();
    }
}
