//! The single write path. Every change (an API call, a console form, the scheduler's own holding
//! update or apology) is a command here: it validates, then writes the incident, the update, the
//! ETA revision, the audit entry and one outbox delivery per channel on the caller's transaction.
//! Callers run commands inside a [`Unit`] (begin → commands → commit → wake), the one place
//! where a transaction is committed outside the scheduler and the outbox.

pub use crate::domain::wording::{eta_line, next_update_line, EtaChange};
use std::sync::Arc;

use crate::config::Config;
use crate::domain::Invalid;
use crate::render::{RenderError, Renderer};
use crate::store::{Backend, StoreError};

mod automatic;
mod correct;
mod postmortem;
pub use correct::{correct, Correct};
pub use postmortem::{add_action, complete_action, publish_postmortem, save_postmortem};
mod incident;
mod publish;
pub use incident::*;
pub use publish::*;
mod unit;
pub use unit::Unit;
pub mod alerts;
pub mod console;
pub mod inbox;
pub mod maintenance;
pub mod mirror;
pub mod operators;
pub mod review;
pub mod subscribers;
pub mod tokens;

pub use automatic::scheduled;

/// Why a command did not happen.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("incident {0} does not exist")]
    NotFound(i64),
    #[error("incident {id} has changed since version {expected}; it is now at version {current}")]
    Stale {
        id: i64,
        expected: i64,
        current: i64,
    },
    #[error("incident {0} is already resolved")]
    Resolved(i64),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Render(#[from] RenderError),
}

impl From<crate::domain::incident::Refused> for CommandError {
    fn from(r: crate::domain::incident::Refused) -> Self {
        use crate::domain::incident::Refused;
        match r {
            Refused::Stale {
                id,
                expected,
                current,
            } => CommandError::Stale {
                id,
                expected,
                current,
            },
            Refused::Closed(id) => CommandError::Resolved(id),
        }
    }
}

/// What commands need besides the transaction.
#[derive(Clone)]
pub struct Env {
    pub config: Arc<Config>,
    pub renderer: Arc<Renderer>,
    pub backend: Backend,
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// Who is acting, as the audit log and updates name them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A signed-in operator of the console, by email address.
    Operator(String),
    /// An API token, by its name.
    Token(String),
    /// Alertmanager's webhook, by the name of the token it authenticates with.
    Alertmanager(String),
    /// Candor's own scheduler (holding updates, apologies, maintenance notices).
    Scheduler,
    /// The command line on the server, run by the named system user.
    Cli(String),
    /// Someone on the public site, unauthenticated: the subscribe form (or its API twin), or
    /// a confirmation or unsubscribe link from a mail.
    Public,
}

impl Actor {
    pub fn token(name: &str) -> Self {
        Actor::Token(name.to_string())
    }
    pub fn operator(email: &str) -> Self {
        Actor::Operator(email.to_string())
    }
    pub fn scheduler() -> Self {
        Actor::Scheduler
    }
}

/// The audit log's names: `operator:<email>`, `token:<name>` (also for Alertmanager, whose
/// changes are audited under the token it uses), `candor` for the scheduler, `cli:<user>`,
/// `public` for the subscribe form and the links in subscribers' mail.
impl std::fmt::Display for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Actor::Operator(email) => write!(f, "operator:{email}"),
            Actor::Token(name) | Actor::Alertmanager(name) => write!(f, "token:{name}"),
            Actor::Scheduler => f.write_str("candor"),
            Actor::Cli(user) => write!(f, "cli:{user}"),
            Actor::Public => f.write_str("public"),
        }
    }
}
