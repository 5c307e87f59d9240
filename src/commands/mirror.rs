//! Publishes to the mirrors: queued as deliveries on each mirror's channel (`mirror:<name>`).
//! Automatic ones (a change, the minute's heartbeat) are not audited; one asked for by a person
//! (`candor mirror sync`) is.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{Actor, CommandError};
use crate::config::Config;
use crate::store::{audit, mirrors, Conn};

/// Queues a full publish on every mirror (or the one named), audited. Returns the mirrors it
/// queued one for (none where one was already waiting).
pub async fn sync(
    conn: &mut Conn,
    config: &Config,
    actor: &Actor,
    only: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Vec<String>, CommandError> {
    let targets: Vec<_> = config
        .mirrors
        .targets
        .iter()
        .filter(|t| only.is_none_or(|n| n == t.name()))
        .collect();
    if let Some(name) = only.filter(|_| targets.is_empty()) {
        return Err(crate::domain::Invalid::new(
            "mirror",
            format!("no mirror is named `{name}` in mirrors.targets"),
        )
        .into());
    }
    let mut queued = Vec::new();
    for t in targets {
        if mirrors::request_publish(conn, &t.channel(), true, now).await? {
            queued.push(t.name().to_string());
        }
    }
    audit::record(
        conn,
        &actor.to_string(),
        "mirror.sync",
        None,
        &json!({ "mirrors": queued }),
        now,
    )
    .await?;
    Ok(queued)
}
