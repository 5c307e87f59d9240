//! The read model kept in memory between rebuilds: the stories of every incident the status
//! page shows (the 90-day window, the newest incidents, the newest maintenance windows).
//!
//! A refresh asks the database which incidents changed since the counter it last applied
//! (`public_changes`, written by every public change in its own transaction) and reloads only
//! those, plus any incident that has just entered what the page shows; the rest are kept. When
//! the change rows no longer cover the gap (pruned, or an instance far behind), it reloads
//! everything. Either way the result is the same as reading it all afresh, which a test checks
//! after every kind of change.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};

use super::snapshot::{Story, HISTORY_DAYS, RECENT_INCIDENTS};
use crate::config::Config;
use crate::store::{changes, read_model, Conn, Result};

#[derive(Debug, Default)]
pub struct ReadModel {
    /// The change counter this model reflects (`None`: nothing loaded yet).
    revision: Option<i64>,
    stories: BTreeMap<i64, Story>,
    /// Incidents in the window or among the newest, by id.
    core: Vec<i64>,
    /// The newest maintenance windows, latest start first.
    windows: Vec<i64>,
}

/// What one refresh read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refreshed {
    /// Stories read from the database.
    pub loaded: usize,
    /// Whether everything was read afresh.
    pub full: bool,
}

impl ReadModel {
    pub fn revision(&self) -> i64 {
        self.revision.unwrap_or(0)
    }

    /// The stories of incidents in the window or among the newest, oldest first.
    pub fn core(&self) -> impl DoubleEndedIterator<Item = &Story> {
        self.core.iter().filter_map(|id| self.stories.get(id))
    }

    /// The newest maintenance windows, latest start first.
    pub fn windows(&self) -> impl Iterator<Item = &Story> {
        self.windows.iter().filter_map(|id| self.stories.get(id))
    }

    pub fn story(&self, id: i64) -> Option<&Story> {
        self.stories.get(&id)
    }

    /// Brings the model up to what the database holds at `now`.
    pub async fn refresh(
        &mut self,
        conn: &mut Conn,
        config: &Config,
        now: DateTime<Utc>,
    ) -> Result<Refreshed> {
        // The counter first: whatever commits after this read is reloaded next time.
        let revision = changes::version(conn).await?;
        let changed = match self.revision {
            Some(last) => changes::changed_between(conn, last, revision).await?,
            None => None,
        };
        let since = now - Duration::days(i64::from(HISTORY_DAYS) + 1);
        let (core, windows) = read_model::needed(conn, since, RECENT_INCIDENTS).await?;
        let needed: BTreeSet<i64> = core.iter().chain(&windows).copied().collect();
        let full = changed.is_none();
        let reload: Vec<i64> = match changed {
            None => needed.iter().copied().collect(),
            Some(changed) => {
                let changed: BTreeSet<i64> = changed.into_iter().collect();
                needed
                    .iter()
                    .copied()
                    .filter(|id| changed.contains(id) || !self.stories.contains_key(id))
                    .collect()
            }
        };
        self.stories.retain(|id, _| needed.contains(id));
        let mut loaded = read_model::load(conn, &reload).await?;
        let count = loaded.incidents.len();
        for incident in loaded.incidents {
            let id = incident.id;
            self.stories.insert(
                id,
                Story {
                    url: crate::commands::incident_url(config, id),
                    components: loaded.components.remove(&id).unwrap_or_default(),
                    updates: loaded.updates.remove(&id).unwrap_or_default(),
                    eta_revisions: loaded.eta_revisions.remove(&id).unwrap_or_default(),
                    first_alert_at: loaded.first_alert_at.remove(&id),
                    postmortem: loaded.postmortems.remove(&id),
                    incident,
                },
            );
        }
        self.core = core;
        self.windows = windows;
        self.revision = Some(revision);
        Ok(Refreshed {
            loaded: count,
            full,
        })
    }
}
