//! The unit of work: begin → commands → commit → wake, owned in one place.
//!
//! Handlers (the API, the console, the subscribe form, the CLI, Alertmanager) never begin or
//! commit a transaction themselves. They open a [`Unit`], run one or more commands on
//! [`Unit::tx`], and call [`Unit::commit`], which commits and then wakes this instance's
//! delivery workers so the outbox rows written by the commands go out at once. Dropping a
//! unit without committing rolls everything back (nothing is sent, nothing is audited).

use tokio::sync::watch;

use crate::store::{Db, StoreError, Tx};

/// One transaction of commands, and whom to wake when it commits.
pub struct Unit {
    tx: Tx,
    wake: Option<watch::Sender<u64>>,
}

impl Unit {
    /// Begins a write transaction. `wake` is moved on commit (the app's change signal);
    /// `None` where no worker of this process could be waiting (the CLI).
    pub async fn begin(db: &Db, wake: Option<watch::Sender<u64>>) -> Result<Self, StoreError> {
        Ok(Unit {
            tx: db.begin_write().await?,
            wake,
        })
    }

    /// The transaction the commands write on.
    pub fn tx(&mut self) -> &mut Tx {
        &mut self.tx
    }

    /// Commits, then wakes the delivery workers.
    pub async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await?;
        if let Some(wake) = self.wake {
            wake.send_modify(|v| *v = v.wrapping_add(1));
        }
        Ok(())
    }
}
