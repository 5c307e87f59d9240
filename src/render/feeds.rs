//! `/feed.atom` (RFC 4287) and `/feed.rss` (RSS 2.0): one entry per public update.

use super::snapshot::Snapshot;
use crate::config::Config;

/// The Atom feed document.
pub fn atom(_snapshot: &Snapshot, _config: &Config) -> String {
    String::new()
}

/// The RSS 2.0 feed document.
pub fn rss(_snapshot: &Snapshot, _config: &Config) -> String {
    String::new()
}
