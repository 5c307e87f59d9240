//! Candor as its users see it: one integration-test binary.

mod alertmanager;
mod cli;
mod console;
mod console_errors;
mod edge;
mod email;
mod estimates;
mod facts;
mod feeds;
mod guard;
mod helpers;
mod incidents;
mod maintenance;
mod metrics;
mod openapi;
mod outbox;
mod resilience;
mod retention;
mod runon;
mod scheduler;
mod social;
mod spans;
mod status_page;
mod status_v2;
mod subscribers;
mod words;
