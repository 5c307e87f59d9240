//! Per-channel rate limits, read from the injected clock (so tests drive them with a manual
//! clock), and taken before a delivery is claimed: a worker never holds a lease while it waits
//! for its turn, so the lease cannot run out and hand the delivery to a second sender.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use crate::clock::Clock;

/// governor's view of Candor's clock: time since the Unix epoch.
#[derive(Clone)]
pub struct LimiterClock(pub Arc<dyn Clock>);

impl governor::clock::Clock for LimiterClock {
    type Instant = Duration;
    fn now(&self) -> Duration {
        (self.0.now() - chrono::DateTime::UNIX_EPOCH)
            .to_std()
            .unwrap_or_default()
    }
}

/// A channel's limit: at most `per_minute` sends a minute, in a burst of at most that many.
pub struct Limiter(RateLimiter<NotKeyed, InMemoryState, LimiterClock, NoOpMiddleware<Duration>>);

impl Limiter {
    pub fn per_minute(n: NonZeroU32, clock: Arc<dyn Clock>) -> Self {
        Self(RateLimiter::direct_with_clock(
            Quota::per_minute(n),
            LimiterClock(clock),
        ))
    }

    /// Takes up to `want` permits now; returns how many it took.
    pub fn take(&self, want: i64) -> i64 {
        let mut got = 0;
        while got < want && self.0.check().is_ok() {
            got += 1;
        }
        got
    }
}
