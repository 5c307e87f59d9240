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
    telemetry::init(cli.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
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
