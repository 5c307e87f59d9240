//! SQLite's write turn: one writer of this process at a time, first come first served, except
//! that the delivery workers' short writes (claims and outcomes) go before every waiting API
//! transaction.
//!
//! Without the priority, a flood of API writes puts each outbox write at the back of a queue
//! of dozens of transactions, so the channels fall behind the writes they must carry (each
//! claim and each outcome waits its turn). With it, an outbox write waits for at most the one
//! transaction that holds the turn. The outbox's writes are bounded (one claim and one batch of
//! outcomes per lane at a time), so they cannot starve the API.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{Mutex, Notify, OwnedMutexGuard};

/// Whose write this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// API and console transactions, the scheduler: first come first served.
    Normal,
    /// The outbox's claims and outcomes: before every waiting `Normal` writer.
    Urgent,
}

#[derive(Debug, Default)]
pub struct WriteTurn {
    lock: Arc<Mutex<()>>,
    /// Urgent writers waiting for the lock.
    urgent: AtomicUsize,
    /// Told when the last waiting urgent writer got the lock.
    clear: Notify,
}

/// Holds the turn until dropped.
pub type TurnGuard = OwnedMutexGuard<()>;

impl WriteTurn {
    pub async fn take(&self, priority: Priority) -> TurnGuard {
        match priority {
            Priority::Urgent => {
                self.urgent.fetch_add(1, Ordering::SeqCst);
                let guard = self.lock.clone().lock_owned().await;
                if self.urgent.fetch_sub(1, Ordering::SeqCst) == 1 {
                    self.clear.notify_waiters();
                }
                guard
            }
            Priority::Normal => loop {
                // Registered before the check, so a notification between the two is not missed.
                let cleared = self.clear.notified();
                if self.urgent.load(Ordering::SeqCst) > 0 {
                    cleared.await;
                    continue;
                }
                let guard = self.lock.clone().lock_owned().await;
                if self.urgent.load(Ordering::SeqCst) == 0 {
                    return guard;
                }
                // An urgent writer arrived while this one queued: let it go first.
                drop(guard);
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// With a normal writer holding the turn and many queued behind it, an urgent writer gets
    /// the turn next, not after the queue.
    #[tokio::test]
    async fn an_urgent_writer_goes_before_the_queue() {
        let turn = Arc::new(WriteTurn::default());
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let held = turn.take(Priority::Normal).await;
        let mut tasks = Vec::new();
        for i in 0..8 {
            let (turn, order) = (turn.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _g = turn.take(Priority::Normal).await;
                order.lock().unwrap().push(format!("normal {i}"));
            }));
        }
        // Let the normal writers queue on the lock (yields, not a wait for time).
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
        let (t, o) = (turn.clone(), order.clone());
        let urgent = tokio::spawn(async move {
            let _g = t.take(Priority::Urgent).await;
            o.lock().unwrap().push("urgent".to_string());
        });
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
        drop(held);
        tokio::time::timeout(Duration::from_secs(10), urgent)
            .await
            .expect("the urgent writer finishes")
            .unwrap();
        for t in tasks {
            t.await.unwrap();
        }
        let order = order.lock().unwrap();
        assert_eq!(order.len(), 9);
        assert_eq!(order[0], "urgent", "order: {order:?}");
    }
}
