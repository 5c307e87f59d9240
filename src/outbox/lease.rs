//! Renewing a delivery's lease while a long send runs (an email fan-out, a full publish to a
//! mirror).

use std::time::Duration;

use super::Outbox;
use crate::channels::SendError;
use crate::domain::to_chrono;
use crate::store::turn::Priority;
use crate::store::{deliveries, StoreError};

impl Outbox {
    /// Runs `send` while renewing the lease of delivery `id` every third of the lease. If the
    /// lease is lost (this worker was too slow to renew and another took the delivery over),
    /// the send is dropped: the other worker carries on from what was recorded.
    pub(super) async fn renewing_lease<F>(
        &self,
        id: i64,
        owner: &str,
        send: F,
    ) -> Result<Result<crate::channels::Sent, SendError>, StoreError>
    where
        F: std::future::Future<Output = Result<crate::channels::Sent, SendError>>,
    {
        // The renewal runs beside the send, never in place of it: the send may hold this
        // process's SQLite write turn (recording outcomes) while the renewal waits for it.
        let renew = async {
            let mut every = tokio::time::interval((self.lease / 3).max(Duration::from_millis(10)));
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            every.tick().await;
            loop {
                every.tick().await;
                let until = self.clock.now() + to_chrono(self.lease);
                let mut conn = self.db.write_conn_as(Priority::Urgent).await?;
                if !deliveries::renew_lease(&mut conn, id, owner, until).await? {
                    return Ok::<(), StoreError>(());
                }
            }
        };
        tokio::select! {
            r = send => Ok(r),
            lost = renew => {
                lost?;
                tracing::warn!("lease lost during a long delivery; another worker carries on");
                Ok(Err(SendError::retryable("lease lost to another worker")))
            }
        }
    }
}
