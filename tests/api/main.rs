//! Candor as its users see it: one integration-test binary.

mod cli;
mod helpers;
mod incidents;
mod outbox;
mod scheduler;
