//! Candor: an outage status broadcaster.
//!
//! Every change goes through one write path ([`commands`]) that records the incident, the update,
//! the ETA revision, the audit entry and one outbox delivery per channel in a single transaction.
//! Everything that leaves Candor is read back out of that outbox by [`outbox`] workers; the
//! [`scheduler`] keeps the promises each public update makes. See `docs/ARCHITECTURE.md` in the repository.

pub mod app;
pub mod channels;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod domain;
pub mod http;
pub mod inbox;
pub mod metrics;
pub mod mirror;
pub mod outbox;
pub mod render;
pub mod scheduler;
pub mod status_page;
pub mod store;
pub mod supervise;
pub mod telemetry;

pub use app::App;
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::Config;
