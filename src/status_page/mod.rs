//! The public status page: its read model (one bounded read of what customers may see), the
//! documents rendered from it (the page, incident and history pages, feeds, the Statuspage v2
//! JSON, the calendar), the in-memory cache that serves them, and the loop that keeps them fresh.
//! Nothing here writes: every change arrives through `commands`, and this module reads it back.
//!
//! - `snapshot`: what customers may see, assembled from the read model;
//! - `model`: the read model kept in memory, reloading only the incidents a change touched;
//! - `pages`, `feeds`, `v2`, `ics`: documents rendered from a snapshot (pure, no I/O);
//! - `record`: the promise record as the pages word it;
//! - `cache`: every document rendered and compressed once per change, served from memory;
//! - `refresh`: when to rebuild.

pub mod cache;
pub mod feeds;
pub mod ics;
pub mod model;
pub mod on_demand;
pub mod pages;
pub mod record;
mod refresh;
pub mod snapshot;
pub mod v2;
