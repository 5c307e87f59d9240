//! `site:` settings: the page's name, address, time zone, contact, look and footer.

use std::path::PathBuf;

use serde::Deserialize;

use super::{de_tz, de_url, ConfigError};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteConfig {
    /// Shown on every page and used to sign scheduled updates.
    pub name: String,
    /// Where the public status page is reachable; links in messages point here. Left out, it
    /// follows `server.listen` (see [`super::Config::from_yaml_with_env`]).
    #[serde(default = "unset_public_url", deserialize_with = "de_url")]
    pub public_url: url::Url,
    /// Whether `public_url` was left out of the file (and so follows `server.listen`).
    #[serde(skip)]
    pub public_url_follows_listen: bool,
    /// Time zone used for times in messages (the status page shows UTC and the reader's zone).
    #[serde(default = "default_tz", deserialize_with = "de_tz")]
    pub time_zone: chrono_tz::Tz,
    /// How customers reach a human: an email address or URL.
    pub support_contact: String,
    /// Folder of templates that override the built-in ones (a missing file falls back).
    #[serde(default = "default_templates_dir")]
    pub templates_dir: PathBuf,
    /// Logo shown in the page header (an absolute URL or a path on this site).
    #[serde(default)]
    pub logo_url: Option<String>,
    /// Colours of the status page.
    #[serde(default)]
    pub colours: Colours,
    /// Links in the page footer (your main site, terms, ...).
    #[serde(default)]
    pub footer_links: Vec<FooterLink>,
}

/// The page's colours, as CSS hex colours (`#rrggbb`). Status colours are chosen for contrast and
/// are the same on every Candor page, so customers learn them once.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Colours {
    /// Header background and links.
    #[serde(default = "default_accent")]
    pub accent: String,
    /// Text on the accent colour.
    #[serde(default = "default_on_accent")]
    pub on_accent: String,
}

fn default_accent() -> String {
    "#1f3a5f".into()
}
fn default_on_accent() -> String {
    "#ffffff".into()
}

impl Default for Colours {
    fn default() -> Self {
        Self {
            accent: default_accent(),
            on_accent: default_on_accent(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FooterLink {
    pub label: String,
    pub url: String,
}

/// A placeholder replaced by the listen address once the file is read.
fn unset_public_url() -> url::Url {
    url::Url::parse("http://127.0.0.1:8080/").expect("valid URL")
}

fn default_tz() -> chrono_tz::Tz {
    chrono_tz::UTC
}
fn default_templates_dir() -> PathBuf {
    PathBuf::from("templates")
}

impl SiteConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.name.trim().is_empty() {
            return Err(ConfigError::invalid("site.name", "must not be empty"));
        }
        if self.support_contact.trim().is_empty() {
            return Err(ConfigError::invalid(
                "site.support_contact",
                "must name how customers reach a human (an email address or URL)",
            ));
        }
        for (key, value) in [
            ("site.colours.accent", &self.colours.accent),
            ("site.colours.on_accent", &self.colours.on_accent),
        ] {
            let hex = value.strip_prefix('#').unwrap_or("");
            if hex.len() != 6 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(ConfigError::invalid(
                    key,
                    format!("`{value}` is not a colour; write it like `#1f3a5f`"),
                ));
            }
        }
        for (i, link) in self.footer_links.iter().enumerate() {
            if link.label.trim().is_empty() {
                return Err(ConfigError::invalid(
                    format!("site.footer_links[{i}].label"),
                    "must not be empty",
                ));
            }
            if !(link.url.starts_with("https://")
                || link.url.starts_with("http://")
                || link.url.starts_with('/'))
            {
                return Err(ConfigError::invalid(
                    format!("site.footer_links[{i}].url"),
                    "must be an http(s) URL or a path starting with `/`",
                ));
            }
        }
        if let Some(logo) = &self.logo_url {
            if !(logo.starts_with("https://")
                || logo.starts_with("http://")
                || logo.starts_with('/'))
            {
                return Err(ConfigError::invalid(
                    "site.logo_url",
                    "must be an http(s) URL or a path starting with `/`",
                ));
            }
        }
        Ok(())
    }
}
