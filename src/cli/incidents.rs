//! `candor incident ...`: declare, update, resolve and read incidents on a running server, as
//! requests to its API (`/api/v1/incidents`).

use clap::Subcommand;
use reqwest::Method;
use serde_json::{json, Value};

use super::client::{body, components, describe};

#[derive(Subcommand)]
pub enum IncidentCommand {
    /// Declare an incident; prints it (its id first).
    Open {
        /// The public title, e.g. "Elevated API error rates".
        #[arg(long)]
        title: String,
        /// The public words of this update.
        #[arg(long)]
        message: String,
        /// none, minor, major or critical.
        #[arg(long)]
        impact: Option<String>,
        /// investigating, identified or monitoring.
        #[arg(long)]
        status: Option<String>,
        /// ID=STATUS, repeatable: `--component api=partial_outage`.
        #[arg(long = "component")]
        components: Vec<String>,
        /// When it will be fixed (RFC 3339).
        #[arg(long, conflicts_with = "eta_in")]
        eta: Option<String>,
        /// When it will be fixed, from now (`45m`).
        #[arg(long)]
        eta_in: Option<String>,
        /// Promise the next update sooner than the policy says (`20m`).
        #[arg(long)]
        next_update_in: Option<String>,
        /// Who is in charge, shown in the console.
        #[arg(long)]
        owner: Option<String>,
    },
    /// Post an update to an open incident.
    Update {
        /// The incident's number (`incident list` prints it).
        id: i64,
        /// The public words of this update.
        #[arg(long)]
        message: String,
        /// investigating, identified or monitoring.
        #[arg(long)]
        status: Option<String>,
        /// none, minor, major or critical.
        #[arg(long)]
        impact: Option<String>,
        /// ID=STATUS, repeatable: `--component api=degraded_performance`.
        #[arg(long = "component")]
        components: Vec<String>,
        /// When it will be fixed (RFC 3339).
        #[arg(long, conflicts_with = "eta_in")]
        eta: Option<String>,
        /// When it will be fixed, from now (`45m`).
        #[arg(long)]
        eta_in: Option<String>,
        /// Why the estimate moved: required when it moves later; published with it.
        #[arg(long)]
        eta_reason: Option<String>,
        /// Promise the next update sooner than the policy says (`20m`).
        #[arg(long)]
        next_update_in: Option<String>,
        /// Refuse (exit 5) if the incident is no longer at this version.
        #[arg(long)]
        version: Option<i64>,
    },
    /// Resolve an incident.
    Resolve {
        /// The incident's number (`incident list` prints it).
        id: i64,
        /// The public words of this update.
        #[arg(long)]
        message: String,
        /// Refuse (exit 5) if it changed since this version (as `show` prints it).
        #[arg(long)]
        version: Option<i64>,
    },
    /// List incidents (newest first).
    List {
        /// open, resolved or all.
        #[arg(long, default_value = "open")]
        state: String,
    },
    /// Show one incident with its estimate history, its updates and their deliveries.
    Show {
        /// The incident's number (`incident list` prints it).
        id: i64,
    },
}

/// The HTTP request for one `candor incident ...` command (an error for a malformed
/// `--component`).
pub(super) fn request(command: IncidentCommand) -> anyhow::Result<(Method, String, Option<Value>)> {
    let j = |v: Option<String>| v.map(Value::String);
    match command {
        IncidentCommand::Open {
            title,
            message,
            impact,
            status,
            components: comps,
            eta,
            eta_in,
            next_update_in,
            owner,
        } => components(&comps).map(|c| {
            let b = body(&[
                ("title", Some(json!(title))),
                ("message", Some(json!(message))),
                ("impact", j(impact)),
                ("status", j(status)),
                ("components", c),
                ("eta", j(eta)),
                ("eta_in", j(eta_in)),
                ("next_update_in", j(next_update_in)),
                ("owner", j(owner)),
            ]);
            (Method::POST, "/api/v1/incidents".to_string(), Some(b))
        }),
        IncidentCommand::Update {
            id,
            message,
            status,
            impact,
            components: comps,
            eta,
            eta_in,
            eta_reason,
            next_update_in,
            version,
        } => components(&comps).map(|c| {
            let b = body(&[
                ("message", Some(json!(message))),
                ("status", j(status)),
                ("impact", j(impact)),
                ("components", c),
                ("eta", j(eta)),
                ("eta_in", j(eta_in)),
                ("eta_reason", j(eta_reason)),
                ("next_update_in", j(next_update_in)),
                ("version", version.map(|v| json!(v))),
            ]);
            (
                Method::POST,
                format!("/api/v1/incidents/{id}/updates"),
                Some(b),
            )
        }),
        IncidentCommand::Resolve {
            id,
            message,
            version,
        } => Ok((
            Method::POST,
            format!("/api/v1/incidents/{id}/resolve"),
            Some(body(&[
                ("message", Some(json!(message))),
                ("version", version.map(|v| json!(v))),
            ])),
        )),
        IncidentCommand::List { state } => Ok((
            Method::GET,
            format!("/api/v1/incidents?state={state}"),
            None,
        )),
        IncidentCommand::Show { id } => Ok((Method::GET, format!("/api/v1/incidents/{id}"), None)),
    }
}

/// Prints the server's answer: JSON with `--json`, else one block per incident; then the
/// honesty check's warnings on stderr.
pub(super) fn print(value: &Value, as_json: bool) {
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        );
    } else if let Some(list) = value["incidents"].as_array() {
        if list.is_empty() {
            println!("no incidents");
        }
        for i in list {
            print!("{}", describe(i));
        }
    } else {
        print!("{}", describe(value));
    }
    // The check before publishing: worth a second look, never a refusal.
    for w in value["warnings"].as_array().into_iter().flatten() {
        eprintln!("warning: {}", w["message"].as_str().unwrap_or_default());
    }
}
