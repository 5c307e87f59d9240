//! `candor maintenance ...`: schedule, change, extend, complete, cancel and read maintenance
//! windows on a running server, as requests to its API (`/api/v1/maintenances`).

use clap::Subcommand;
use reqwest::Method;
use serde_json::{json, Value};

use super::client::{body, describe_window};

#[derive(Subcommand)]
pub enum MaintenanceCommand {
    /// Schedule (and announce) a window; prints it, with any peak-hour warnings on stderr.
    #[command(alias = "create")]
    Schedule {
        /// The public title, e.g. "Database upgrade".
        #[arg(long)]
        title: String,
        /// When it starts (RFC 3339).
        #[arg(long)]
        starts_at: String,
        /// When it ends (RFC 3339).
        #[arg(
            long,
            conflicts_with = "duration",
            required_unless_present = "duration"
        )]
        ends_at: Option<String>,
        /// How long it lasts (`2h`), instead of --ends-at.
        #[arg(long)]
        duration: Option<String>,
        /// What happens and what customers will notice.
        #[arg(long)]
        description: Option<String>,
        /// A component id, repeatable: `--component api`.
        #[arg(long = "component")]
        components: Vec<String>,
        /// The announcement's words (a standard one is written otherwise).
        #[arg(long)]
        message: Option<String>,
        /// Who is in charge, shown in the console.
        #[arg(long)]
        owner: Option<String>,
    },
    /// Change a window (before it starts: anything; after: title, description, end).
    Update {
        /// The window's number (`maintenance list` prints it).
        id: i64,
        /// The public title, e.g. "Database upgrade".
        #[arg(long)]
        title: Option<String>,
        /// What happens and what customers will notice.
        #[arg(long)]
        description: Option<String>,
        /// When it starts (RFC 3339).
        #[arg(long)]
        starts_at: Option<String>,
        /// When it ends (RFC 3339).
        #[arg(long)]
        ends_at: Option<String>,
        /// Replaces the list of components, repeatable.
        #[arg(long = "component")]
        components: Vec<String>,
        /// The public words (a standard text is written otherwise).
        #[arg(long)]
        message: Option<String>,
        /// Why the end moves (needed once it has started).
        #[arg(long)]
        reason: Option<String>,
        /// in_progress or verifying (once it has started).
        #[arg(long)]
        status: Option<String>,
        /// Refuse (exit 5) if it changed since this version (as `show` prints it).
        #[arg(long)]
        version: Option<i64>,
    },
    /// Give a window a later end, with the reason customers are told.
    Extend {
        /// The window's number (`maintenance list` prints it).
        id: i64,
        /// When it ends (RFC 3339).
        #[arg(long, conflicts_with = "by", required_unless_present = "by")]
        ends_at: Option<String>,
        /// How much longer than the current planned end (`30m`).
        #[arg(long)]
        by: Option<String>,
        /// Why it moves, told to customers.
        #[arg(long)]
        reason: String,
        /// The public words (a standard text is written otherwise).
        #[arg(long)]
        message: Option<String>,
        /// Refuse (exit 5) if it changed since this version (as `show` prints it).
        #[arg(long)]
        version: Option<i64>,
    },
    /// End a window that has started (early, on time or late).
    Complete {
        /// The window's number (`maintenance list` prints it).
        id: i64,
        /// The public words (a standard text is written otherwise).
        #[arg(long)]
        message: Option<String>,
        /// Refuse (exit 5) if it changed since this version (as `show` prints it).
        #[arg(long)]
        version: Option<i64>,
    },
    /// Call off a window that has not started (announced too).
    Cancel {
        /// The window's number (`maintenance list` prints it).
        id: i64,
        /// The public words (a standard text is written otherwise).
        #[arg(long)]
        message: Option<String>,
        /// Refuse (exit 5) if it changed since this version (as `show` prints it).
        #[arg(long)]
        version: Option<i64>,
    },
    /// List windows.
    List {
        /// upcoming, active or all.
        #[arg(long, default_value = "all")]
        state: String,
    },
    /// Show one window with its updates and their deliveries.
    Show {
        /// The window's number (`maintenance list` prints it).
        id: i64,
    },
}

/// The HTTP request for one `candor maintenance ...` command.
pub(super) fn request(command: MaintenanceCommand) -> (Method, String, Option<serde_json::Value>) {
    let j = |v: Option<String>| v.map(Value::String);
    let version = |v: Option<i64>| v.map(|v| json!(v));
    let list = |c: Vec<String>| (!c.is_empty()).then(|| json!(c));
    match command {
        MaintenanceCommand::Schedule {
            title,
            starts_at,
            ends_at,
            duration,
            description,
            components,
            message,
            owner,
        } => (
            Method::POST,
            "/api/v1/maintenances".into(),
            Some(body(&[
                ("title", Some(json!(title))),
                ("starts_at", Some(json!(starts_at))),
                ("ends_at", j(ends_at)),
                ("duration", j(duration)),
                ("description", j(description)),
                ("components", list(components)),
                ("message", j(message)),
                ("owner", j(owner)),
            ])),
        ),
        MaintenanceCommand::Update {
            id,
            title,
            description,
            starts_at,
            ends_at,
            components,
            message,
            reason,
            status,
            version: v,
        } => (
            Method::PATCH,
            format!("/api/v1/maintenances/{id}"),
            Some(body(&[
                ("title", j(title)),
                ("description", j(description)),
                ("starts_at", j(starts_at)),
                ("ends_at", j(ends_at)),
                ("components", list(components)),
                ("message", j(message)),
                ("reason", j(reason)),
                ("status", j(status)),
                ("version", version(v)),
            ])),
        ),
        MaintenanceCommand::Extend {
            id,
            ends_at,
            by,
            reason,
            message,
            version: v,
        } => (
            Method::POST,
            format!("/api/v1/maintenances/{id}/extend"),
            Some(body(&[
                ("ends_at", j(ends_at)),
                ("extend_by", j(by)),
                ("reason", Some(json!(reason))),
                ("message", j(message)),
                ("version", version(v)),
            ])),
        ),
        MaintenanceCommand::Complete {
            id,
            message,
            version: v,
        } => (
            Method::POST,
            format!("/api/v1/maintenances/{id}/complete"),
            Some(body(&[("message", j(message)), ("version", version(v))])),
        ),
        MaintenanceCommand::Cancel {
            id,
            message,
            version: v,
        } => (
            Method::POST,
            format!("/api/v1/maintenances/{id}/cancel"),
            Some(body(&[("message", j(message)), ("version", version(v))])),
        ),
        MaintenanceCommand::List { state } => (
            Method::GET,
            format!("/api/v1/maintenances?state={state}"),
            None,
        ),
        MaintenanceCommand::Show { id } => {
            (Method::GET, format!("/api/v1/maintenances/{id}"), None)
        }
    }
}

/// Prints the server's answer: peak-hour warnings on stderr, then JSON with `--json`, else one
/// block per window.
pub(super) fn print(value: &Value, as_json: bool) {
    for w in value["warnings"].as_array().into_iter().flatten() {
        eprintln!("warning: {}", w.as_str().unwrap_or_default());
    }
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        );
    } else if let Some(list) = value["maintenances"].as_array() {
        if list.is_empty() {
            println!("no maintenance windows");
        }
        for w in list {
            print!("{}", describe_window(w));
        }
    } else {
        print!("{}", describe_window(value));
    }
}
