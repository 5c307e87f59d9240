//! Candor as its users see it: one integration-test binary.

mod cli;
mod email;
mod feeds;
mod helpers;
mod incidents;
mod metrics;
mod outbox;
mod scheduler;
mod status_page;
mod status_v2;
