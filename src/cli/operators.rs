//! `candor operator ...`: the people who sign in at /admin. Adding (or resetting) one goes
//! through [`crate::commands::operators`], audited under the system user.

use anyhow::Context;
use clap::Subcommand;

use super::actor;
use crate::commands::operators::{check_email, NewOperator};
use crate::commands::{self, Unit};
use crate::domain::Invalid;
use crate::store::{operators, Db};
use crate::{Clock, SystemClock};

#[derive(Subcommand)]
pub enum OperatorCommand {
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
