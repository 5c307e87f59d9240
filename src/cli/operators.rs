//! `candor operator ...`: the people who sign in at /admin. Adding (or resetting) one goes
//! through [`crate::commands::operators`], audited under the system user.

use anyhow::Context;
use clap::Subcommand;

use super::actor;
use crate::commands::operators::{check_email, hash_new_password, Change, NewOperator};
use crate::commands::{self, Unit};
use crate::domain::Invalid;
use crate::store::{operators, Db};
use crate::{Clock, SystemClock};

#[derive(Subcommand)]
pub enum OperatorCommand {
    /// Add an operator, or set a new role and password for an existing one. The password is
    /// read from standard input (one line), or prompted for without echo on a terminal.
    Add {
        /// The address the operator signs in with.
        #[arg(long)]
        email: String,
        /// `responder` (runs incidents) or `admin`.
        #[arg(long, value_parser = ["responder", "admin"])]
        role: String,
    },
    /// List operators, with their role and state.
    List,
    /// Sign the operator out everywhere and refuse their sign-ins until enabled again.
    Disable {
        /// The operator's email address.
        #[arg(long)]
        email: String,
    },
    /// Let a disabled operator sign in again.
    Enable {
        /// The operator's email address.
        #[arg(long)]
        email: String,
    },
    /// Remove the operator for good (the audit log keeps their address in past entries).
    Remove {
        /// The operator's email address.
        #[arg(long)]
        email: String,
    },
    /// Give the operator another role.
    Role {
        /// The operator's email address.
        #[arg(long)]
        email: String,
        /// `responder` (incidents and maintenance) or `admin` (also operators, tokens and
        /// subscribers).
        #[arg(long, value_parser = ["responder", "admin"])]
        role: String,
    },
    /// Set a new password (read like `add` reads it); every session of theirs ends.
    ResetPassword {
        /// The operator's email address.
        #[arg(long)]
        email: String,
    },
    /// Forget the failed sign-ins counted against the account, so it can sign in at once.
    Unlock {
        /// The operator's email address.
        #[arg(long)]
        email: String,
    },
}

pub(super) async fn run(db: &Db, command: OperatorCommand) -> anyhow::Result<()> {
    match command {
        OperatorCommand::Add { email, role } => {
            // The address is checked before the password is asked for.
            let email = check_email(&email).map_err(flag)?;
            let role: operators::Role = role.parse().map_err(anyhow::Error::msg)?;
            let password = read_password()?;
            let new =
                tokio::task::spawn_blocking(move || NewOperator::new(&email, role, &password))
                    .await?
                    .map_err(flag)?;
            let mut unit = Unit::begin(db, None).await?;
            let added =
                commands::operators::add(unit.tx(), &actor(), &new, SystemClock.now()).await?;
            unit.commit().await?;
            let (email, role) = (new.email(), new.role().as_str());
            if added {
                println!("added operator {email} ({role})");
            } else {
                println!("updated operator {email} ({role}); their password was replaced");
            }
        }
        OperatorCommand::Disable { email } => {
            apply(
                db,
                &email,
                Change::Disable,
                "disabled {}; their sessions have ended",
            )
            .await?
        }
        OperatorCommand::Enable { email } => {
            apply(db, &email, Change::Enable, "enabled {}").await?
        }
        OperatorCommand::Remove { email } => {
            apply(db, &email, Change::Remove, "removed {}").await?
        }
        OperatorCommand::Unlock { email } => {
            apply(
                db,
                &email,
                Change::Unlock,
                "unlocked {}; they can sign in at once",
            )
            .await?
        }
        OperatorCommand::Role { email, role } => {
            let role: operators::Role = role.parse().map_err(anyhow::Error::msg)?;
            apply(
                db,
                &email,
                Change::Role(role),
                &format!("{{}} is now {}", role.as_str()),
            )
            .await?
        }
        OperatorCommand::ResetPassword { email } => {
            let password = read_password()?;
            let hash = tokio::task::spawn_blocking(move || hash_new_password(&password))
                .await?
                .map_err(flag)?;
            apply(
                db,
                &email,
                Change::Password(hash),
                "set a new password for {}; their sessions have ended",
            )
            .await?
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

/// Applies one change to an existing operator and says what was done (`done`, with `{}` for
/// the address).
async fn apply(db: &Db, email: &str, change: Change, done: &str) -> anyhow::Result<()> {
    let mut unit = Unit::begin(db, None).await?;
    match commands::operators::change(unit.tx(), &actor(), email, &change, SystemClock.now()).await
    {
        Err(commands::CommandError::Invalid(i)) => return Err(flag(i)),
        other => other?,
    }
    unit.commit().await?;
    println!("{}", done.replace("{}", &email.trim().to_lowercase()));
    Ok(())
}

/// A refused input in the command line's words: `--email: ...`, `the password ...`.
fn flag(i: Invalid) -> anyhow::Error {
    match i.field.as_str() {
        "password" => anyhow::anyhow!("the password {}", i.message),
        field => anyhow::anyhow!("--{field}: {}", i.message),
    }
}

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
