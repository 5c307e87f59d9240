//! The `candor` command: parse, load config, call into the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use candor::app::Role;
use candor::config::{Config, Overrides};
use candor::store::{tokens, Db};
use candor::telemetry::{self, LogFormat};
use candor::{App, Clock, SystemClock};
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

/// Candor: declare incidents with an honest estimate; Candor keeps every promised update.
#[derive(Parser)]
#[command(name = "candor", version, about)]
struct Cli {
    /// Configuration file.
    #[arg(
        long,
        global = true,
        env = "CANDOR_CONFIG",
        default_value = "config/candor.yaml"
    )]
    config: PathBuf,
    /// Database URL (`sqlite://file.db` or `postgres://...`); overrides `database.url`.
    #[arg(long, global = true, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Log format on stderr.
    #[arg(long, global = true, env = "CANDOR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Server to talk to (for `incident`).
    #[arg(
        long,
        global = true,
        env = "CANDOR_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    url: String,
    /// API token (for `incident`); create one with `candor token create`.
    #[arg(long, global = true, env = "CANDOR_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Print JSON instead of text (for `incident`).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API, run the scheduler and deliver messages.
    Serve {
        /// Address to listen on; overrides `server.listen`.
        #[arg(long, env = "CANDOR_LISTEN")]
        listen: Option<SocketAddr>,
        /// What this instance does: `web` (status page and API), `worker` (scheduler and
        /// deliveries; HTTP answers health checks only) or `all`.
        #[arg(long, env = "CANDOR_ROLE", value_enum, default_value_t = Role::All)]
        role: Role,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Validate the configuration and exit (nothing is started).
    CheckConfig,
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Manage console operators (the people who sign in at /admin).
    Operator {
        #[command(subcommand)]
        command: OperatorCommand,
    },
    /// Declare, update, resolve and read incidents on a running server (for scripts).
    ///
    /// Exit codes: 0 done, 2 bad arguments, 3 refused as invalid, 4 no such incident,
    /// 5 changed meanwhile or already resolved, 6 bad token, 7 server error, 8 unreachable.
    Incident {
        #[command(subcommand)]
        command: IncidentCommand,
    },
    /// Work with the configured channels.
    Channel {
        #[command(subcommand)]
        command: ChannelCommand,
    },
    /// Schedule, change, extend, complete, cancel and read maintenance windows on a running
    /// server (for scripts). Same options and exit codes as `incident`.
    Maintenance {
        #[command(subcommand)]
        command: MaintenanceCommand,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
}

#[derive(Subcommand)]
enum IncidentCommand {
    /// Declare an incident; prints it (its id first).
    Open {
        #[arg(long)]
        title: String,
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
        #[arg(long)]
        owner: Option<String>,
    },
    /// Post an update to an open incident.
    Update {
        id: i64,
        #[arg(long)]
        message: String,
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        impact: Option<String>,
        #[arg(long = "component")]
        components: Vec<String>,
        #[arg(long, conflicts_with = "eta_in")]
        eta: Option<String>,
        #[arg(long)]
        eta_in: Option<String>,
        /// Why the estimate moved: required when it moves later; published with it.
        #[arg(long)]
        eta_reason: Option<String>,
        #[arg(long)]
        next_update_in: Option<String>,
        /// Refuse (exit 5) if the incident is no longer at this version.
        #[arg(long)]
        version: Option<i64>,
    },
    /// Resolve an incident.
    Resolve {
        id: i64,
        #[arg(long)]
        message: String,
        #[arg(long)]
        version: Option<i64>,
    },
    /// List incidents (newest first).
    List {
        /// open, resolved or all.
        #[arg(long, default_value = "open")]
        state: String,
    },
    /// Show one incident with its updates and their deliveries.
    Show { id: i64 },
}

#[derive(Subcommand)]
enum ChannelCommand {
    /// Send a test message through one channel now (not through the outbox) and print what
    /// happened; exits non-zero if it failed.
    Test {
        /// The channel's id in `channels:`.
        id: String,
    },
}

#[derive(Subcommand)]
enum MaintenanceCommand {
    /// Schedule (and announce) a window; prints it, with any peak-hour warnings on stderr.
    #[command(alias = "create")]
    Schedule {
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
        #[arg(long)]
        description: Option<String>,
        /// A component id, repeatable: `--component api`.
        #[arg(long = "component")]
        components: Vec<String>,
        /// The announcement's words (a standard one is written otherwise).
        #[arg(long)]
        message: Option<String>,
        #[arg(long)]
        owner: Option<String>,
    },
    /// Change a window (before it starts: anything; after: title, description, end).
    Update {
        id: i64,
        #[arg(long)]
        title: Option<String>,
        #[arg(long)]
        description: Option<String>,
        #[arg(long)]
        starts_at: Option<String>,
        #[arg(long)]
        ends_at: Option<String>,
        /// Replaces the list of components, repeatable.
        #[arg(long = "component")]
        components: Vec<String>,
        #[arg(long)]
        message: Option<String>,
        /// Why the end moves (needed once it has started).
        #[arg(long)]
        reason: Option<String>,
        /// in_progress or verifying (once it has started).
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        version: Option<i64>,
    },
    /// Give a window a later end, with the reason customers are told.
    Extend {
        id: i64,
        #[arg(long, conflicts_with = "by", required_unless_present = "by")]
        ends_at: Option<String>,
        /// How much longer than the current planned end (`30m`).
        #[arg(long)]
        by: Option<String>,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        message: Option<String>,
        #[arg(long)]
        version: Option<i64>,
    },
    /// End a window that has started (early, on time or late).
    Complete {
        id: i64,
        #[arg(long)]
        message: Option<String>,
        #[arg(long)]
        version: Option<i64>,
    },
    /// Call off a window that has not started (announced too).
    Cancel {
        id: i64,
        #[arg(long)]
        message: Option<String>,
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
    Show { id: i64 },
}

#[derive(Subcommand)]
enum OperatorCommand {
    /// Add an operator, or set a new role and password for an existing one. The password is
    /// read from standard input (one line), or prompted for without echo on a terminal.
    Add {
        #[arg(long)]
        email: String,
        /// `responder` (runs incidents) or `admin`.
        #[arg(long, value_parser = ["responder", "admin"])]
        role: String,
    },
    /// List operators.
    List,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token; it is printed once, on the last line.
    Create {
        #[arg(long)]
        name: String,
    },
    /// List tokens (names and dates; tokens themselves are never stored).
    List,
    /// Revoke the token with this name.
    Revoke {
        #[arg(long)]
        name: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Completions { shell } = &cli.command {
        let mut cmd = <Cli as clap::CommandFactory>::command();
        clap_complete::generate(*shell, &mut cmd, "candor", &mut std::io::stdout());
        return ExitCode::SUCCESS;
    }
    telemetry::init(cli.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Command::Incident { .. } | Command::Maintenance { .. } = &cli.command {
        return runtime.block_on(incident(cli));
    }
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let listen = match &cli.command {
        Command::Serve { listen, .. } => *listen,
        _ => None,
    };
    let overrides = Overrides {
        database_url: cli.database_url.clone(),
        listen,
    };
    let config = Config::load(&cli.config, &overrides)?;
    match cli.command {
        Command::Incident { .. } | Command::Maintenance { .. } | Command::Completions { .. } => {
            unreachable!("handled before the config is loaded")
        }
        Command::CheckConfig => {
            println!(
                "{}: OK ({} components, {} channels, database {})",
                cli.config.display(),
                config.components.len(),
                config.channels.len(),
                if config.database.url.expose().starts_with("sqlite:") {
                    "SQLite"
                } else {
                    "PostgreSQL"
                }
            );
            Ok(())
        }
        Command::Migrate => {
            let db = connect(&config).await?;
            db.migrate().await.context("migration failed")?;
            println!("migrations applied");
            Ok(())
        }
        Command::Token { command } => {
            let db = connect(&config).await?;
            db.migrate().await.context("migration failed")?;
            let mut conn = db.pool().acquire().await?;
            let now = SystemClock.now();
            match command {
                TokenCommand::Create { name } => {
                    let name = name.trim().to_string();
                    anyhow::ensure!(
                        !name.is_empty() && name.len() <= 100,
                        "--name must be 1-100 characters"
                    );
                    let token = tokens::create(&mut conn, &name, now).await.map_err(|e| {
                        if e.is_unique_violation("api_tokens") {
                            anyhow::anyhow!("a token named `{name}` already exists; pick another name or revoke it")
                        } else {
                            e.into()
                        }
                    })?;
                    println!("Created API token `{name}`. It is shown only once; store it now:");
                    println!("{token}");
                }
                TokenCommand::List => {
                    for t in tokens::list(&mut conn).await? {
                        let state = match t.revoked_at {
                            Some(at) => format!("revoked {at}"),
                            None => "active".into(),
                        };
                        let used = t
                            .last_used_at
                            .map(|t| t.to_rfc3339())
                            .unwrap_or_else(|| "never".into());
                        println!(
                            "{}\tcreated {}\tlast used {}\t{}",
                            t.name,
                            t.created_at.to_rfc3339(),
                            used,
                            state
                        );
                    }
                }
                TokenCommand::Revoke { name } => {
                    anyhow::ensure!(
                        tokens::revoke(&mut conn, &name, now).await?,
                        "no active token named `{name}`"
                    );
                    println!("revoked `{name}`");
                }
            }
            Ok(())
        }
        Command::Channel {
            command: ChannelCommand::Test { id },
        } => {
            let renderer =
                std::sync::Arc::new(candor::render::Renderer::new(&config.site.templates_dir));
            let (sent, preview) =
                candor::channels::send_test(&config, &renderer, &id, SystemClock.now())
                    .await
                    .with_context(|| format!("channel `{id}`"))?;
            if let Some(p) = preview {
                let limit = p.limit.map(|l| format!(" of {l}")).unwrap_or_default();
                println!(
                    "sent through `{id}` ({}, length {}{limit}):",
                    p.kind, p.length
                );
                println!("{}", p.text);
            } else {
                println!("sent through `{id}`");
            }
            if let Some(r) = sent.remote_id {
                println!("remote id: {r}");
            }
            if let Some(u) = sent.remote_url {
                println!("remote url: {u}");
            }
            Ok(())
        }
        Command::Operator { command } => {
            let db = connect(&config).await?;
            db.migrate().await.context("migration failed")?;
            operator(&db, command).await
        }
        Command::Serve { role, .. } => {
            let listen = config.server.listen;
            let app = App::builder(config).build().await?;
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("cannot listen on {listen}"))?;
            let shutdown = CancellationToken::new();
            tokio::spawn(wait_for_signal(shutdown.clone()));
            app.serve(listener, shutdown, role).await
        }
    }
}

/// Shortest console password accepted.
const MIN_PASSWORD: usize = 12;

fn read_password() -> anyhow::Result<String> {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let again = rpassword::prompt_password("Again: ")?;
        anyhow::ensure!(first == again, "the two passwords differ");
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// `candor operator ...`
async fn operator(db: &Db, command: OperatorCommand) -> anyhow::Result<()> {
    use candor::store::{audit, operators};
    let now = SystemClock.now();
    match command {
        OperatorCommand::Add { email, role } => {
            let email = email.trim().to_lowercase();
            anyhow::ensure!(
                email.len() <= 254
                    && email
                        .split_once('@')
                        .is_some_and(|(a, b)| !a.is_empty() && b.contains('.')),
                "--email: `{email}` is not an email address"
            );
            let role: operators::Role = role.parse().map_err(anyhow::Error::msg)?;
            let password = read_password()?;
            anyhow::ensure!(
                password.chars().count() >= MIN_PASSWORD,
                "the password must be at least {MIN_PASSWORD} characters"
            );
            let hash = tokio::task::spawn_blocking(move || operators::hash_password(&password))
                .await?
                .map_err(anyhow::Error::msg)?;
            let mut tx = db.begin_write().await?;
            let (_, new) = operators::upsert(&mut tx, &email, role, &hash, now).await?;
            audit::record(
                &mut tx,
                "cli",
                if new {
                    "operator.add"
                } else {
                    "operator.reset"
                },
                None,
                &serde_json::json!({ "email": email, "role": role }),
                now,
            )
            .await?;
            tx.commit().await?;
            if new {
                println!("added operator {email} ({})", role.as_str());
            } else {
                println!(
                    "updated operator {email} ({}); their password was replaced",
                    role.as_str()
                );
            }
        }
        OperatorCommand::List => {
            let mut conn = db.pool().acquire().await?;
            for o in operators::list(&mut conn).await? {
                println!(
                    "{}\t{}\tadded {}{}",
                    o.email,
                    o.role.as_str(),
                    o.created_at.to_rfc3339(),
                    o.disabled_at
                        .map(|d| format!("\tdisabled {}", d.to_rfc3339()))
                        .unwrap_or_default()
                );
            }
        }
    }
    Ok(())
}

/// `candor incident ...` and `candor maintenance ...`: the HTTP client for scripts.
async fn incident(cli: Cli) -> ExitCode {
    use candor::client::{body, components, describe, describe_window, Client, Exit};
    use serde_json::{json, Value};
    let command = match cli.command {
        Command::Incident { command } => command,
        Command::Maintenance { command } => {
            let client = match Client::new(&cli.url, cli.token.clone()) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    return ExitCode::from(2);
                }
            };
            let (method, path, payload) = maintenance_request(command);
            return match client.call(method, &path, payload).await {
                Ok((_, value)) => {
                    for w in value["warnings"].as_array().into_iter().flatten() {
                        eprintln!("warning: {}", w.as_str().unwrap_or_default());
                    }
                    if cli.json {
                        println!(
                            "{}",
                            serde_json::to_string_pretty(&value).unwrap_or_default()
                        );
                    } else if let Some(list) = value["maintenances"].as_array() {
                        if list.is_empty() {
                            println!("no maintenance windows");
                        }
                        for w in list {
                            print!("{}", describe_window(w));
                        }
                    } else {
                        print!("{}", describe_window(&value));
                    }
                    ExitCode::from(Exit::Ok as u8)
                }
                Err(f) => {
                    eprintln!("error: {}", f.message);
                    ExitCode::from(f.exit as u8)
                }
            };
        }
        _ => unreachable!("checked by the caller"),
    };
    let client = match Client::new(&cli.url, cli.token.clone()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    let j = |v: Option<String>| v.map(Value::String);
    let request = match command {
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
            (
                reqwest::Method::POST,
                "/api/v1/incidents".to_string(),
                Some(b),
            )
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
                reqwest::Method::POST,
                format!("/api/v1/incidents/{id}/updates"),
                Some(b),
            )
        }),
        IncidentCommand::Resolve {
            id,
            message,
            version,
        } => Ok((
            reqwest::Method::POST,
            format!("/api/v1/incidents/{id}/resolve"),
            Some(body(&[
                ("message", Some(json!(message))),
                ("version", version.map(|v| json!(v))),
            ])),
        )),
        IncidentCommand::List { state } => Ok((
            reqwest::Method::GET,
            format!("/api/v1/incidents?state={state}"),
            None,
        )),
        IncidentCommand::Show { id } => Ok((
            reqwest::Method::GET,
            format!("/api/v1/incidents/{id}"),
            None,
        )),
    };
    let (method, path, payload) = match request {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    match client.call(method, &path, payload).await {
        Ok((_, value)) => {
            if cli.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&value).unwrap_or_default()
                );
            } else if let Some(list) = value["incidents"].as_array() {
                if list.is_empty() {
                    println!("no incidents");
                }
                for i in list {
                    print!("{}", describe(i));
                }
            } else {
                print!("{}", describe(&value));
            }
            // The check before publishing: worth a second look, never a refusal.
            for w in value["warnings"].as_array().into_iter().flatten() {
                eprintln!("warning: {}", w["message"].as_str().unwrap_or_default());
            }
            ExitCode::from(Exit::Ok as u8)
        }
        Err(f) => {
            eprintln!("error: {}", f.message);
            ExitCode::from(f.exit as u8)
        }
    }
}

/// The HTTP request for one `candor maintenance ...` command.
fn maintenance_request(
    command: MaintenanceCommand,
) -> (reqwest::Method, String, Option<serde_json::Value>) {
    use candor::client::body;
    use serde_json::{json, Value};
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
            reqwest::Method::POST,
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
            reqwest::Method::PATCH,
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
            reqwest::Method::POST,
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
            reqwest::Method::POST,
            format!("/api/v1/maintenances/{id}/complete"),
            Some(body(&[("message", j(message)), ("version", version(v))])),
        ),
        MaintenanceCommand::Cancel {
            id,
            message,
            version: v,
        } => (
            reqwest::Method::POST,
            format!("/api/v1/maintenances/{id}/cancel"),
            Some(body(&[("message", j(message)), ("version", version(v))])),
        ),
        MaintenanceCommand::List { state } => (
            reqwest::Method::GET,
            format!("/api/v1/maintenances?state={state}"),
            None,
        ),
        MaintenanceCommand::Show { id } => (
            reqwest::Method::GET,
            format!("/api/v1/maintenances/{id}"),
            None,
        ),
    }
}

async fn connect(config: &Config) -> anyhow::Result<Db> {
    Db::connect(
        config.database.url.expose(),
        config.database.max_connections,
    )
    .await
    .context("cannot open the database (check database.url or DATABASE_URL)")
}

async fn wait_for_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    shutdown.cancel();
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    shutdown.cancel();
}
