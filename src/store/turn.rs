//! SQLite's write turn: one writer of this process at a time, first come first served, except
//! that the delivery workers' short writes (claims and outcomes) go before every waiting API
//! transaction.
//!
//! Without the priority, a flood of API writes puts each outbox write at the back of a queue
//! of dozens of transactions, so the channels fall behind the writes they must carry (each
//! claim and each outcome waits its turn). With it, an outbox write waits for at most the one
//! transaction that holds the turn. The outbox's writes are bounded (one claim and one batch of
//! outcomes per lane at a time), so they cannot starve the API.
//!
//! The turn is handed over, not released to a race: within each class writers are served in
//! the order they asked, so a writer's wait is bounded by the writers ahead of it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// Whose write this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// API and console transactions, the scheduler: first come first served.
    Normal,
    /// The outbox's claims and outcomes: before every waiting `Normal` writer.
    Urgent,
}

/// The turn is handed from one writer to the next (never released to a race): the first
/// waiting urgent writer, else the first waiting normal one. Each class is served in the order
/// it asked.
#[derive(Debug, Default)]
pub struct WriteTurn {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    held: bool,
    urgent: VecDeque<oneshot::Sender<TurnGuard>>,
    normal: VecDeque<oneshot::Sender<TurnGuard>>,
}

/// Holds the turn until dropped; dropping it hands the turn to the next writer.
#[derive(Debug)]
pub struct TurnGuard {
    state: Option<Arc<Mutex<State>>>,
}

impl WriteTurn {
    pub async fn take(&self, priority: Priority) -> TurnGuard {
        loop {
            let waiting = {
                let mut s = lock(&self.state);
                if !s.held {
                    s.held = true;
                    return TurnGuard {
                        state: Some(self.state.clone()),
                    };
                }
                let (tx, rx) = oneshot::channel();
                match priority {
                    Priority::Urgent => s.urgent.push_back(tx),
                    Priority::Normal => s.normal.push_back(tx),
                }
                rx
            };
            // A writer that gives up (its request was dropped) drops `rx`: the turn sent to it
            // comes back, or is dropped inside the channel, and goes to the next in either case.
            if let Ok(guard) = waiting.await {
                return guard;
            }
        }
    }
}

impl Drop for TurnGuard {
    fn drop(&mut self) {
        let Some(state) = self.state.take() else {
            return;
        };
        loop {
            let next = {
                let mut s = lock(&state);
                match s.urgent.pop_front().or_else(|| s.normal.pop_front()) {
                    Some(next) => next,
                    None => {
                        s.held = false;
                        return;
                    }
                }
            };
            let guard = TurnGuard {
                state: Some(state.clone()),
            };
            match next.send(guard) {
                Ok(()) => return,
                // That writer gave up: take the guard back without handing on, try the next.
                Err(mut unsent) => {
                    unsent.state = None;
                }
            }
        }
    }
}

/// The state is only touched briefly and never across an await; a panic elsewhere while it was
/// held leaves it consistent (each change is one push or pop), so poisoning is ignored.
fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    type Order = Arc<std::sync::Mutex<Vec<String>>>;

    /// A writer that takes the turn with `priority`, notes `name` in `order`, and holds the
    /// turn across a yield, as a transaction does across its statements.
    fn writer(
        turn: &Arc<WriteTurn>,
        order: &Order,
        name: String,
        priority: Priority,
    ) -> tokio::task::JoinHandle<()> {
        let (turn, order) = (turn.clone(), order.clone());
        tokio::spawn(async move {
            let _g = turn.take(priority).await;
            order.lock().unwrap().push(name);
            tokio::task::yield_now().await;
        })
    }

    /// Lets every spawned writer run until it waits for the turn (yields, not a wait for time).
    async fn let_the_others_queue() {
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
    }

    /// With a normal writer holding the turn and many queued behind it, an urgent writer gets
    /// the turn next, not after the queue.
    #[tokio::test]
    async fn an_urgent_writer_goes_before_the_queue() {
        let turn = Arc::new(WriteTurn::default());
        let order = Order::default();
        let held = turn.take(Priority::Normal).await;
        let tasks: Vec<_> = (0..8)
            .map(|i| writer(&turn, &order, format!("normal {i}"), Priority::Normal))
            .collect();
        let_the_others_queue().await;
        let urgent = writer(&turn, &order, "urgent".into(), Priority::Urgent);
        let_the_others_queue().await;
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

    /// Normal writers are served in the order they asked, even when urgent writers cut in
    /// between them: an urgent writer goes first, and the queue behind it keeps its order.
    /// (The first version let every normal writer queue again behind an urgent one, which
    /// shuffled the queue each time the outbox wrote: the API's p99 under a flood was many
    /// times its median.)
    #[tokio::test]
    async fn normal_writers_keep_their_order_when_urgent_writers_cut_in() {
        let turn = Arc::new(WriteTurn::default());
        let order = Order::default();
        let held = turn.take(Priority::Normal).await;
        let mut tasks = Vec::new();
        let spawn = |name: String, priority: Priority| writer(&turn, &order, name, priority);
        for i in 0..6 {
            tasks.push(spawn(format!("normal {i}"), Priority::Normal));
            let_the_others_queue().await;
        }
        tasks.push(spawn("urgent a".into(), Priority::Urgent));
        let_the_others_queue().await;
        for i in 6..9 {
            tasks.push(spawn(format!("normal {i}"), Priority::Normal));
            let_the_others_queue().await;
        }
        tasks.push(spawn("urgent b".into(), Priority::Urgent));
        let_the_others_queue().await;
        drop(held);
        for t in tasks {
            tokio::time::timeout(Duration::from_secs(10), t)
                .await
                .expect("every writer gets the turn")
                .unwrap();
        }
        let order = order.lock().unwrap().clone();
        let mut expected = vec!["urgent a".to_string(), "urgent b".to_string()];
        expected.extend((0..9).map(|i| format!("normal {i}")));
        assert_eq!(order, expected);
    }

    /// A writer that stops waiting (its request was dropped) does not keep the turn from the
    /// writers behind it, whether it gave up before or after the turn was handed to it.
    #[tokio::test]
    async fn a_writer_that_gives_up_passes_the_turn_on() {
        let turn = Arc::new(WriteTurn::default());
        let held = turn.take(Priority::Normal).await;
        let t = turn.clone();
        let quitter = tokio::spawn(async move {
            let _g = t.take(Priority::Urgent).await;
            std::future::pending::<()>().await;
        });
        let t = turn.clone();
        let patient = tokio::spawn(async move {
            let _g = t.take(Priority::Normal).await;
        });
        let_the_others_queue().await;
        quitter.abort();
        drop(held);
        tokio::time::timeout(Duration::from_secs(10), patient)
            .await
            .expect("the next writer gets the turn")
            .unwrap();
        // Given up after the hand-over: the turn sits in the dropped channel and comes back.
        let held = turn.take(Priority::Normal).await;
        let t = turn.clone();
        let late = tokio::spawn(async move {
            let _g = t.take(Priority::Normal).await;
        });
        let_the_others_queue().await;
        drop(held);
        late.abort();
        let _ = late.await;
        tokio::time::timeout(Duration::from_secs(10), turn.take(Priority::Normal))
            .await
            .expect("the turn is free again");
    }
}
