//! Supervision of the background loops (each outbox lane, the scheduler, the page refresher).
//!
//! A loop never ends because one pass failed: a panic in a pass is caught and turned into an
//! error, an error is logged and the pass is tried again after a growing pause, and each loop's
//! state is kept here for `/readyz`, which reports a loop whose last pass failed.

use std::any::Any;
use std::collections::BTreeMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Mutex;
use std::time::Duration;

use futures::FutureExt;

/// The state of every supervised loop of this instance.
#[derive(Debug, Default)]
pub struct Loops {
    failing: Mutex<BTreeMap<String, String>>,
    running: Mutex<BTreeMap<String, bool>>,
}

impl Loops {
    /// Notes that `name` runs (it is reported as down if it stops before shutdown).
    pub fn started(&self, name: &str) {
        self.running
            .lock()
            .expect("loops lock")
            .insert(name.to_string(), true);
    }

    /// Notes that `name` ended (at shutdown, or because it could not go on).
    pub fn stopped(&self, name: &str) {
        self.running
            .lock()
            .expect("loops lock")
            .insert(name.to_string(), false);
    }

    /// A pass of `name` succeeded.
    pub fn ok(&self, name: &str) {
        let was = self.failing.lock().expect("loops lock").remove(name);
        if was.is_some() {
            tracing::info!(task = name, "background loop recovered");
        }
    }

    /// A pass of `name` failed (an error or a panic).
    pub fn failed(&self, name: &str, error: &str) {
        self.failing
            .lock()
            .expect("loops lock")
            .insert(name.to_string(), error.to_string());
    }

    /// Loops that are down, each with why: the last pass failed, or it stopped.
    pub fn down(&self) -> Vec<(String, String)> {
        let mut down: Vec<(String, String)> = self
            .failing
            .lock()
            .expect("loops lock")
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (name, running) in self.running.lock().expect("loops lock").iter() {
            if !running && !down.iter().any(|(n, _)| n == name) {
                down.push((name.clone(), "stopped".into()));
            }
        }
        down.sort();
        down
    }

    /// Runs one pass of `name`, catching a panic, and records how it went.
    pub async fn pass<T, E, F>(&self, name: &str, pass: F) -> Result<T, String>
    where
        E: std::fmt::Display,
        F: Future<Output = Result<T, E>>,
    {
        let result = match catch_panic(pass).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(e.to_string()),
            Err(panic) => Err(format!("panicked: {panic}")),
        };
        match &result {
            Ok(_) => self.ok(name),
            Err(e) => {
                tracing::error!(task = name, error = %e, "background pass failed; retrying with backoff");
                self.failed(name, e);
            }
        }
        result
    }
}

/// Awaits `fut`; a panic inside it comes back as `Err(message)` instead of unwinding further.
pub async fn catch_panic<T, F: Future<Output = T>>(fut: F) -> Result<T, String> {
    AssertUnwindSafe(fut)
        .catch_unwind()
        .await
        .map_err(|p| panic_message(&*p))
}

/// The text a panic was raised with.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

/// Pauses between restarts of a failing loop: 1 s, doubling up to a minute; reset by a success.
#[derive(Debug, Clone)]
pub struct RestartBackoff {
    next: Duration,
}

impl Default for RestartBackoff {
    fn default() -> Self {
        Self { next: Self::FIRST }
    }
}

impl RestartBackoff {
    const FIRST: Duration = Duration::from_secs(1);
    const MAX: Duration = Duration::from_secs(60);

    /// The pause before the next try, and doubles the one after.
    pub fn failed(&mut self) -> Duration {
        let now = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        now
    }

    pub fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_pass_is_recorded_and_a_later_success_clears_it() {
        let loops = Loops::default();
        let r: Result<(), String> = loops
            .pass("scheduler", async {
                if true {
                    panic!("boom in a tick");
                }
                Ok::<(), String>(())
            })
            .await;
        assert_eq!(r.unwrap_err(), "panicked: boom in a tick");
        assert_eq!(
            loops.down(),
            vec![(
                "scheduler".to_string(),
                "panicked: boom in a tick".to_string()
            )]
        );
        loops
            .pass("scheduler", async { Ok::<(), String>(()) })
            .await
            .unwrap();
        assert!(loops.down().is_empty());
        loops.started("pages");
        loops.stopped("pages");
        assert_eq!(
            loops.down(),
            vec![("pages".to_string(), "stopped".to_string())]
        );
    }

    #[test]
    fn restarts_back_off_up_to_a_minute() {
        let mut b = RestartBackoff::default();
        let waits: Vec<u64> = (0..8).map(|_| b.failed().as_secs()).collect();
        assert_eq!(waits, vec![1, 2, 4, 8, 16, 32, 60, 60]);
        b.reset();
        assert_eq!(b.failed().as_secs(), 1);
    }
}
