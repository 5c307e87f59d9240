//! Atlassian Statuspage's public API v2 (`/api/v2/*.json`), same paths, shapes and value sets,
//! rendered from a [`Snapshot`]. Candor's extras (the estimate and the next-update promise) are
//! added as extra fields; the known shape is never broken.

use serde_json::Value;

use super::snapshot::Snapshot;
use crate::config::Config;

/// Every v2 document, by path (for example `/api/v2/summary.json`).
pub fn documents(_snapshot: &Snapshot, _config: &Config) -> Vec<(&'static str, Value)> {
    Vec::new()
}
