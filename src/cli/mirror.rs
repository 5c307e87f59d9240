//! `candor mirror sync`: a full publish of the public site to every mirror (or one), queued
//! through the outbox (audited) and run here at once; a running server would otherwise pick it
//! up within a second.

use clap::Subcommand;

use super::actor;
use crate::app::App;
use crate::commands::{self, Unit};
use crate::config::Config;
use crate::domain::DeliveryState;
use crate::store::deliveries;

#[derive(Subcommand)]
pub enum MirrorCommand {
    /// Publish everything to the mirrors now: every document is checked against what the
    /// target holds (a listing of it), written where it differs or is missing, and stray
    /// documents are deleted. Exits non-zero if a mirror could not be published.
    Sync {
        /// Only this mirror (its `name` in `mirrors.targets`).
        #[arg(long)]
        mirror: Option<String>,
    },
}

pub(super) async fn run(config: Config, command: MirrorCommand) -> anyhow::Result<()> {
    let MirrorCommand::Sync { mirror } = command;
    anyhow::ensure!(
        !config.mirrors.targets.is_empty(),
        "no mirrors are configured (mirrors.targets is empty)"
    );
    let app = App::builder(config).build().await?;
    let now = app.clock.now();
    let mut unit = Unit::begin(&app.db, None).await?;
    let queued = commands::mirror::sync(unit.tx(), &app.config, &actor(), mirror.as_deref(), now)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    unit.commit().await?;
    let channels: Vec<String> = app
        .config
        .mirrors
        .targets
        .iter()
        .filter(|t| mirror.as_deref().is_none_or(|m| m == t.name()))
        .map(|t| t.channel())
        .collect();
    let outbox = app.outbox();
    outbox
        .drain_only(|c| channels.iter().any(|m| m == c))
        .await?;
    let mut failed = 0;
    let mut conn = app.db.pool().acquire().await?;
    for channel in &channels {
        let name = channel.trim_start_matches("mirror:");
        let last = deliveries::latest_on_channel(&mut conn, channel).await?;
        let state = crate::store::mirrors::state(&mut conn, name).await?;
        match last {
            Some(d) if d.state == DeliveryState::Delivered => println!(
                "mirror `{name}`: published, current to change {}",
                state.and_then(|s| s.version).unwrap_or(0)
            ),
            Some(d) if d.state == DeliveryState::InFlight => println!(
                "mirror `{name}`: a running server is publishing it now{}",
                if queued.iter().any(|q| q == name) {
                    ""
                } else {
                    " (a full publish was already queued)"
                }
            ),
            Some(d) => {
                failed += 1;
                println!(
                    "mirror `{name}`: not published ({}): {}",
                    d.state.as_str(),
                    d.last_error.as_deref().unwrap_or("no error recorded")
                );
            }
            None => println!("mirror `{name}`: nothing was queued"),
        }
    }
    anyhow::ensure!(
        failed == 0,
        "{failed} mirror(s) could not be published; the outbox retries them"
    );
    Ok(())
}
