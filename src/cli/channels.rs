//! `candor channel test ID`: one test message through one configured channel, now, outside the
//! outbox; prints what was sent where, and fails with the channel's reason.

use std::sync::Arc;

use anyhow::Context;
use clap::Subcommand;

use crate::config::Config;
use crate::render::Renderer;
use crate::{Clock, SystemClock};

#[derive(Subcommand)]
pub enum ChannelCommand {
    /// Send a test message through one channel now (not through the outbox) and print what
    /// happened; exits non-zero if it failed.
    Test {
        /// The channel's id in `channels:`.
        id: String,
    },
}

pub(super) async fn run(config: &Config, command: ChannelCommand) -> anyhow::Result<()> {
    let ChannelCommand::Test { id } = command;
    let renderer = Arc::new(Renderer::new(&config.site.templates_dir));
    let (sent, preview) = crate::channels::send_test(config, &renderer, &id, SystemClock.now())
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
