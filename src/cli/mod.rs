//! The `candor` command line: its clap definitions, and one file per command group. The binary
//! (`src/main.rs`) only calls [`main`].
//!
//! Commands that change the world go through [`crate::commands`] like every other writer:
//! `incident` and `maintenance` as requests to a running server's API (`remote.rs`), `token`
//! and `operator` as commands on the database, audited under the system user who ran them.

mod channels;
mod check_config;
pub mod client;
mod incidents;
mod init;
mod maintenance;
mod mirror;
mod operators;
mod remote;
mod serve;
mod tokens;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::app::Role;
use crate::commands::Actor;
use crate::config::{Config, Overrides};
use crate::store::Db;
use crate::telemetry::{self, LogFormat};

/// Candor: declare incidents with an honest estimate; Candor keeps every promised update.
#[derive(Parser)]
#[command(name = "candor", version, about)]
pub struct Cli {
    // `--config` and `--database-url` belong to the commands that read the configuration (see
    // [`LocalArgs`]); given before the command, as older scripts do, they still work, unlisted.
    #[arg(long, hide = true)]
    config: Option<PathBuf>,
    #[arg(long, hide = true)]
    database_url: Option<String>,
    /// Log format on stderr.
    #[arg(long, global = true, env = "CANDOR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    // `--url`, `--token` and `--json` belong to `incident` and `maintenance` (see
    // [`RemoteArgs`]); given before the command, as older scripts do, they still work, unlisted.
    #[arg(long, hide = true)]
    url: Option<String>,
    #[arg(long, hide = true)]
    token: Option<String>,
    #[arg(long, hide = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

/// Where the configuration and the database are: the options of the commands that read them
/// (not of `incident` and `maintenance`, which talk to a running server).
#[derive(clap::Args, Clone, Default)]
struct LocalArgs {
    /// Configuration file [default: config/candor.yaml; for `init`, candor.yaml in --dir].
    #[arg(long, global = true, env = "CANDOR_CONFIG")]
    config: Option<PathBuf>,
    /// Database URL (`sqlite://file.db` or `postgres://...`); overrides `database.url`.
    #[arg(long, global = true, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
}

/// Where the running server is and how to sign in to it: the options of the commands that send
/// requests (`incident`, `maintenance`), after the command or any of its subcommands.
#[derive(clap::Args)]
struct RemoteArgs {
    /// The server to send requests to.
    #[arg(
        long,
        global = true,
        env = "CANDOR_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    url: String,
    /// API token; create one with `candor token create` (or `candor init`).
    #[arg(long, global = true, env = "CANDOR_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Print the server's JSON answer instead of text.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Set up a new installation: write a commented config file, create the database, the
    /// first admin operator and an API token, and print the next steps.
    Init {
        #[command(flatten)]
        local: LocalArgs,
        #[command(flatten)]
        args: init::InitArgs,
    },
    /// Serve the API, run the scheduler and deliver messages.
    Serve {
        /// Address to listen on; overrides `server.listen`.
        #[arg(long, env = "CANDOR_LISTEN")]
        listen: Option<SocketAddr>,
        /// What this instance does: `web` (status page and API), `worker` (scheduler and
        /// deliveries; HTTP answers health checks only) or `all`.
        #[arg(long, env = "CANDOR_ROLE", value_enum, default_value_t = Role::All)]
        role: Role,
        #[command(flatten)]
        local: LocalArgs,
    },
    /// Apply database migrations and exit.
    Migrate {
        #[command(flatten)]
        local: LocalArgs,
    },
    /// Validate the configuration and exit (nothing is started).
    CheckConfig {
        #[command(flatten)]
        local: LocalArgs,
    },
    /// Manage API tokens.
    Token {
        #[command(flatten)]
        local: LocalArgs,
        #[command(subcommand)]
        command: tokens::TokenCommand,
    },
    /// Manage console operators (the people who sign in at /admin).
    Operator {
        #[command(flatten)]
        local: LocalArgs,
        #[command(subcommand)]
        command: operators::OperatorCommand,
    },
    /// Declare, update, resolve and read incidents on a running server (for scripts).
    ///
    /// Exit codes: 0 done, 2 bad arguments, 3 refused as invalid, 4 no such incident,
    /// 5 changed meanwhile or already resolved, 6 bad token, 7 server error, 8 unreachable.
    Incident {
        #[command(flatten)]
        remote: RemoteArgs,
        #[command(subcommand)]
        command: incidents::IncidentCommand,
    },
    /// Work with the configured channels.
    Channel {
        #[command(flatten)]
        local: LocalArgs,
        #[command(subcommand)]
        command: channels::ChannelCommand,
    },
    /// Schedule, change, extend, complete, cancel and read maintenance windows on a running
    /// server (for scripts). Same options and exit codes as `incident`.
    Maintenance {
        #[command(flatten)]
        remote: RemoteArgs,
        #[command(subcommand)]
        command: maintenance::MaintenanceCommand,
    },
    /// Publish the status page to the configured mirrors (see `mirrors:` in the config).
    Mirror {
        #[command(flatten)]
        local: LocalArgs,
        #[command(subcommand)]
        command: mirror::MirrorCommand,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
}

/// Writes `bytes` to stdout. A reader that went away (`candor completions bash | head`) is not an
/// error: the output was wanted only up to where it stopped reading.
fn write_stdout(bytes: &[u8]) -> ExitCode {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|_| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: cannot write to stdout: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Parses the command line and runs it; what the `candor` binary does.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Completions { shell } = &cli.command {
        let mut cmd = <Cli as clap::CommandFactory>::command();
        let mut script = Vec::new();
        clap_complete::generate(*shell, &mut cmd, "candor", &mut script);
        return write_stdout(&script);
    }
    telemetry::init(cli.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Requests to a running server: no config, and exit codes of their own. Options given
    // before the command (older scripts) win over the environment.
    let remote = |args: RemoteArgs| remote::Remote {
        url: cli.url.clone().unwrap_or(args.url),
        token: cli.token.clone().or(args.token),
        json: cli.json || args.json,
    };
    match cli.command {
        Command::Incident {
            remote: args,
            command,
        } => {
            return runtime
                .block_on(remote(args).call(|| incidents::request(command), incidents::print));
        }
        Command::Maintenance {
            remote: args,
            command,
        } => {
            return runtime.block_on(
                remote(args).call(|| Ok(maintenance::request(command)), maintenance::print),
            );
        }
        _ => {}
    }
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

impl Command {
    /// The command's own `--config` and `--database-url`, if it reads the configuration.
    fn local(&self) -> Option<&LocalArgs> {
        match self {
            Command::Init { local, .. }
            | Command::Serve { local, .. }
            | Command::Migrate { local }
            | Command::CheckConfig { local }
            | Command::Token { local, .. }
            | Command::Operator { local, .. }
            | Command::Channel { local, .. }
            | Command::Mirror { local, .. } => Some(local),
            Command::Incident { .. }
            | Command::Maintenance { .. }
            | Command::Completions { .. } => None,
        }
    }
}

/// The commands that read the config file.
async fn run(cli: Cli) -> anyhow::Result<()> {
    // Given after the command (or in the environment) wins over given before it.
    let local = cli.command.local().cloned().unwrap_or_default();
    let config_path = local.config.or(cli.config);
    let database_url = local.database_url.or(cli.database_url);
    if let Command::Init { args, .. } = cli.command {
        return init::run(args, config_path, database_url).await;
    }
    let path = config_path.unwrap_or_else(|| PathBuf::from("config/candor.yaml"));
    let listen = match &cli.command {
        Command::Serve { listen, .. } => *listen,
        _ => None,
    };
    let overrides = Overrides {
        database_url,
        listen,
    };
    let config = Config::load(&path, &overrides)?;
    match cli.command {
        Command::Incident { .. }
        | Command::Maintenance { .. }
        | Command::Completions { .. }
        | Command::Init { .. } => {
            unreachable!("handled before the config is loaded")
        }
        Command::CheckConfig { .. } => {
            check_config::run(&path, &config);
            Ok(())
        }
        Command::Migrate { .. } => {
            connect(&config).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Token { command, .. } => tokens::run(&connect(&config).await?, command).await,
        Command::Operator { command, .. } => {
            operators::run(&connect(&config).await?, command).await
        }
        Command::Channel { command, .. } => channels::run(&config, command).await,
        Command::Mirror { command, .. } => mirror::run(config, command).await,
        Command::Serve { role, .. } => serve::run(config, role).await,
    }
}

/// Opens the configured database and brings its schema up to date.
async fn connect(config: &Config) -> anyhow::Result<Db> {
    let db = Db::connect(
        config.database.url.expose(),
        config.database.max_connections,
    )
    .await
    .context("cannot open the database (check database.url or DATABASE_URL)")?;
    db.migrate().await.context("migration failed")?;
    Ok(db)
}

/// Who is running the command line, as the audit log names them: the system user from `$USER`
/// (or `$LOGNAME`), else `cli`.
fn actor() -> Actor {
    let user = ["USER", "LOGNAME"]
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .map(|u| u.trim().to_string())
        .find(|u| !u.is_empty())
        .unwrap_or_else(|| "cli".to_string());
    Actor::Cli(user)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every command below `cmd`, with its path (`candor token create`).
    fn walk(cmd: &clap::Command, path: String, out: &mut Vec<(String, clap::Command)>) {
        for sub in cmd.get_subcommands() {
            let p = format!("{path} {}", sub.get_name());
            out.push((p.clone(), sub.clone()));
            walk(sub, p, out);
        }
    }

    fn commands() -> Vec<(String, clap::Command)> {
        let mut root = super::Cli::command();
        root.build();
        let mut out = vec![("candor".to_string(), root.clone())];
        walk(&root, "candor".into(), &mut out);
        out
    }

    #[test]
    fn every_shown_option_is_described() {
        for (path, cmd) in commands() {
            for arg in cmd.get_arguments() {
                if arg.is_hide_set() || ["help", "version"].contains(&arg.get_id().as_str()) {
                    continue;
                }
                assert!(
                    arg.get_help().is_some() || arg.get_long_help().is_some(),
                    "`{path}` shows `{}` without a description",
                    arg.get_id()
                );
            }
        }
    }

    #[test]
    fn options_are_shown_only_where_they_apply() {
        let shown = |cmd: &clap::Command, id: &str| {
            cmd.get_arguments()
                .any(|a| a.get_id().as_str() == id && !a.is_hide_set())
        };
        for (path, cmd) in commands() {
            if path.split(' ').any(|w| w == "help") {
                continue; // clap's own `help` subcommands
            }
            let remote =
                path.starts_with("candor incident") || path.starts_with("candor maintenance");
            let local = [
                "serve",
                "migrate",
                "check-config",
                "token",
                "operator",
                "channel",
                "mirror",
                "init",
            ]
            .iter()
            .any(|c| path.starts_with(&format!("candor {c}")));
            for id in ["config", "database_url"] {
                assert_eq!(shown(&cmd, id), local, "`{path}` and --{id}");
            }
            for id in ["url", "token", "json"] {
                assert_eq!(shown(&cmd, id), remote, "`{path}` and --{id}");
            }
        }
    }
}
