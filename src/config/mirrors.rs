//! `mirrors:` settings: where a static copy of the public site is published (see
//! `src/mirror`), and when the page's script calls a mirror stale.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{check_id, de_duration, de_url, ConfigError, Secret};

/// Static copies of the public site, kept current on every public change.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorsConfig {
    /// A page whose `heartbeat.json` is older than this shows a banner saying it may be out of
    /// date (Candor rewrites the heartbeat every minute while the mirror is current).
    #[serde(default = "default_stale_after", deserialize_with = "de_duration")]
    pub stale_after: Duration,
    #[serde(default)]
    pub targets: Vec<MirrorTarget>,
}

fn default_stale_after() -> Duration {
    Duration::from_secs(600)
}

impl Default for MirrorsConfig {
    fn default() -> Self {
        Self {
            stale_after: default_stale_after(),
            targets: Vec::new(),
        }
    }
}

/// One place the site is published to. (Read once at start: the variants' sizes do not matter.)
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum MirrorTarget {
    /// An S3-compatible bucket: AWS S3, Cloudflare R2, Google Cloud Storage's S3 interface,
    /// MinIO and the like.
    S3 {
        name: String,
        bucket: String,
        /// `us-east-1` unless told (R2 takes `auto`).
        #[serde(default = "default_region")]
        region: String,
        /// Left out: AWS S3 itself. Otherwise the service's S3 endpoint, e.g.
        /// `https://<account>.r2.cloudflarestorage.com`.
        #[serde(default, deserialize_with = "de_opt_url")]
        endpoint: Option<url::Url>,
        /// Keys are written under this prefix (`status/` → `status/index.html`).
        #[serde(default)]
        prefix: String,
        access_key_id: Secret,
        secret_access_key: Secret,
        #[serde(default)]
        session_token: Option<Secret>,
        /// Path-style requests (`endpoint/bucket/key`) instead of virtual-hosted ones; what
        /// MinIO and most self-hosted servers need. Default: path style when an endpoint is
        /// given, virtual-hosted for AWS.
        #[serde(default)]
        path_style: Option<bool>,
    },
    /// A local directory (served by nginx, copied by rsync, picked up by a static host).
    Directory { name: String, path: PathBuf },
}

fn default_region() -> String {
    "us-east-1".into()
}

fn de_opt_url<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<url::Url>, D::Error> {
    de_url(d).map(Some)
}

impl MirrorTarget {
    pub fn name(&self) -> &str {
        match self {
            Self::S3 { name, .. } | Self::Directory { name, .. } => name,
        }
    }

    /// The delivery channel this target's publishes run on: `mirror:<name>`.
    pub fn channel(&self) -> String {
        format!("mirror:{}", self.name())
    }
}

impl MirrorsConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.stale_after < Duration::from_secs(120)
            || self.stale_after > Duration::from_secs(86_400)
        {
            return Err(ConfigError::invalid(
                "mirrors.stale_after",
                "must be between 2m (the heartbeat is written every minute) and 24h",
            ));
        }
        for (i, t) in self.targets.iter().enumerate() {
            let key = format!("mirrors.targets[{i}]");
            check_id(&format!("{key}.name"), t.name())?;
            if self.targets[..i].iter().any(|o| o.name() == t.name()) {
                return Err(ConfigError::invalid(
                    format!("{key}.name"),
                    format!("`{}` names two mirrors; give each its own name", t.name()),
                ));
            }
            match t {
                MirrorTarget::S3 {
                    bucket,
                    prefix,
                    access_key_id,
                    secret_access_key,
                    ..
                } => {
                    if bucket.trim().is_empty() {
                        return Err(ConfigError::invalid(
                            format!("{key}.bucket"),
                            "must name the bucket",
                        ));
                    }
                    if prefix.starts_with('/') || prefix.contains("..") {
                        return Err(ConfigError::invalid(
                            format!("{key}.prefix"),
                            "must be a relative key prefix like `status/` (no leading `/`, no `..`)",
                        ));
                    }
                    if access_key_id.expose().is_empty() || secret_access_key.expose().is_empty() {
                        return Err(ConfigError::invalid(
                            format!("{key}.access_key_id"),
                            "both access_key_id and secret_access_key must be set (write them as \
                             `${NAME}` to read them from the environment)",
                        ));
                    }
                }
                MirrorTarget::Directory { path, .. } => {
                    if path.as_os_str().is_empty() {
                        return Err(ConfigError::invalid(
                            format!("{key}.path"),
                            "must name a directory",
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{no_env, MINIMAL};
    use super::super::{Config, Overrides};

    fn load(extra: &str) -> Result<Config, String> {
        Config::from_yaml_with_env(&format!("{MINIMAL}{extra}"), &Overrides::default(), &no_env)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn targets_of_both_kinds_parse() {
        let c = load(
            "mirrors:\n  stale_after: 15m\n  targets:\n    - { name: s3, kind: s3, bucket: b, endpoint: \"http://127.0.0.1:9000\", access_key_id: k, secret_access_key: s }\n    - { name: disk, kind: directory, path: /tmp/m }\n",
        )
        .unwrap();
        assert_eq!(c.mirrors.targets.len(), 2);
        assert_eq!(c.mirrors.targets[0].channel(), "mirror:s3");
        assert_eq!(c.mirrors.stale_after.as_secs(), 900);
    }

    #[test]
    fn bad_targets_are_named() {
        let twice = load("mirrors:\n  targets:\n    - { name: a, kind: directory, path: /x }\n    - { name: a, kind: directory, path: /y }\n").unwrap_err();
        assert!(twice.contains("mirrors.targets[1].name"), "{twice}");
        let kind =
            load("mirrors:\n  targets:\n    - { name: a, kind: ftp, path: /x }\n").unwrap_err();
        assert!(kind.contains("ftp"), "{kind}");
        let no_key = load("mirrors:\n  targets:\n    - { name: a, kind: s3, bucket: b, access_key_id: \"\", secret_access_key: s }\n").unwrap_err();
        assert!(no_key.contains("access_key_id"), "{no_key}");
        let short = load("mirrors:\n  stale_after: 30s\n").unwrap_err();
        assert!(short.contains("mirrors.stale_after"), "{short}");
    }
}
