//! `server:` settings: where to listen, and how much the open internet may ask of the process
//! (timeouts, connections, body size), and which proxies may name the client.

use std::net::SocketAddr;
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer};

use super::{de_duration, ConfigError, Secret};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Largest accepted request body, in bytes.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Requests taking longer than this are answered 503 (every route, public ones included).
    #[serde(default = "default_request_timeout", deserialize_with = "de_duration")]
    pub request_timeout: Duration,
    /// How long `serve` waits for in-flight work after SIGTERM/Ctrl-C.
    #[serde(default = "default_grace", deserialize_with = "de_duration")]
    pub shutdown_grace: Duration,
    /// When set, `/metrics` asks for `Authorization: Bearer <this>`.
    #[serde(default)]
    pub metrics_token: Option<Secret>,
    /// A request's head (request line and headers) must arrive whole within this, counted from
    /// when the connection starts waiting for it; so it is also how long an idle keep-alive
    /// connection is kept.
    #[serde(
        default = "default_header_read_timeout",
        deserialize_with = "de_duration"
    )]
    pub header_read_timeout: Duration,
    /// A connection on which no byte moves either way for this long is closed (a stalled upload,
    /// a client that stops reading its answer).
    #[serde(default = "default_idle_timeout", deserialize_with = "de_duration")]
    pub idle_timeout: Duration,
    /// Open connections at most. At the cap, a new connection closes the longest-waiting
    /// connection that has no request in progress; if every connection is busy, the newcomer is
    /// answered 503 at once.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Proxies (addresses or CIDR ranges) whose `Forwarded` / `X-Forwarded-For` headers name the
    /// client. Empty: the peer address is the client, whatever the headers say.
    #[serde(default, deserialize_with = "de_nets")]
    pub trusted_proxies: Vec<IpNet>,
}

fn default_listen() -> SocketAddr {
    "127.0.0.1:8080".parse().expect("valid address")
}
fn default_max_body() -> usize {
    64 * 1024
}
fn default_request_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_grace() -> Duration {
    Duration::from_secs(20)
}
fn default_header_read_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_idle_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_max_connections() -> usize {
    10_000
}

/// The `http://` URL of a listen address; an unspecified address (`0.0.0.0`, `::`) is named by
/// this machine's loopback address, which it includes.
pub fn url_of(listen: SocketAddr) -> url::Url {
    let ip = match listen.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    let addr = SocketAddr::new(ip, listen.port());
    url::Url::parse(&format!("http://{addr}/")).expect("a socket address makes a valid URL")
}

/// Reads `["10.0.0.0/8", "192.0.2.7"]`: a bare address is a single-address range.
fn de_nets<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    let raw = Vec::<String>::deserialize(d)?;
    raw.iter()
        .map(|s| {
            let s = s.trim();
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    serde::de::Error::custom(format!(
                        "`{s}` is not an IP address or CIDR range; write it like `10.0.0.0/8` or `192.0.2.7`"
                    ))
                })
        })
        .collect()
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            max_body_bytes: default_max_body(),
            request_timeout: default_request_timeout(),
            shutdown_grace: default_grace(),
            metrics_token: None,
            header_read_timeout: default_header_read_timeout(),
            idle_timeout: default_idle_timeout(),
            max_connections: default_max_connections(),
            trusted_proxies: Vec::new(),
        }
    }
}

impl ServerConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.max_body_bytes < 1024 {
            return Err(ConfigError::invalid(
                "server.max_body_bytes",
                "must be at least 1024",
            ));
        }
        let within = |key: &str, d: Duration, min: Duration, max: Duration| {
            if d < min || d > max {
                Err(ConfigError::invalid(
                    format!("server.{key}"),
                    format!(
                        "must be between {} and {}",
                        humantime::format_duration(min),
                        humantime::format_duration(max)
                    ),
                ))
            } else {
                Ok(())
            }
        };
        let ms = Duration::from_millis;
        let s = Duration::from_secs;
        within("request_timeout", self.request_timeout, ms(100), s(600))?;
        within(
            "header_read_timeout",
            self.header_read_timeout,
            ms(100),
            s(300),
        )?;
        within("idle_timeout", self.idle_timeout, ms(100), s(3600))?;
        if !(2..=1_000_000).contains(&self.max_connections) {
            return Err(ConfigError::invalid(
                "server.max_connections",
                "must be between 2 and 1000000",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<ServerConfig, String> {
        let c: ServerConfig = serde_yaml::from_str(yaml).map_err(|e| e.to_string())?;
        c.validate().map_err(|e| e.to_string())?;
        Ok(c)
    }

    #[test]
    fn defaults_are_safe_for_the_open_internet() {
        let c = parse("{}").unwrap();
        assert_eq!(c.header_read_timeout, Duration::from_secs(10));
        assert_eq!(c.idle_timeout, Duration::from_secs(60));
        assert_eq!(c.max_connections, 10_000);
        assert!(c.trusted_proxies.is_empty());
    }

    #[test]
    fn trusted_proxies_take_ranges_and_single_addresses() {
        let c = parse(r#"{ trusted_proxies: ["10.0.0.0/8", "192.0.2.7", "::1"] }"#).unwrap();
        assert_eq!(c.trusted_proxies.len(), 3);
        assert!(c.trusted_proxies[1].contains(&"192.0.2.7".parse::<std::net::IpAddr>().unwrap()));
        let e = parse(r#"{ trusted_proxies: ["10.0.0.0/33"] }"#).unwrap_err();
        assert!(e.contains("10.0.0.0/33"), "{e}");
    }

    #[test]
    fn bad_limits_name_their_key() {
        let e = parse("{ header_read_timeout: 0s }").unwrap_err();
        assert!(e.contains("server.header_read_timeout"), "{e}");
        let e = parse("{ max_connections: 1 }").unwrap_err();
        assert!(e.contains("server.max_connections"), "{e}");
        let e = parse("{ idle_timeout: 2h }").unwrap_err();
        assert!(e.contains("server.idle_timeout"), "{e}");
    }
}
