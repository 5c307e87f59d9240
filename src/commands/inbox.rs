//! The inbox's commands: keeping what customers wrote, claiming a conversation, answering in
//! the customer's thread, the per-incident opt-out of "it is fixed" replies, closing the loop
//! when an incident resolves, and telling the team of conversations left waiting.
//!
//! Every reply leaves through the outbox as a delivery of audience `reply` whose payload is a
//! [`Reply`]; it is queued on the incident, so on each channel it goes out after the incident's
//! earlier posts there.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::json;

use super::publish::{incident_url, notify_ops};
use super::{Actor, CommandError, Env};
use crate::channels::{MessageKind, Reply};
use crate::domain::inbox::{fixed_reply, incident_of, Inbound};
use crate::domain::{check_text, to_chrono, Audience, Invalid};
use crate::inbox::{Listener, Post};
use crate::store::inbox::{self as store, Claim, Conversation, Item, Kept, NewAnswer, NewItem};
use crate::store::incidents::{self, Incident};
use crate::store::{audit, deliveries, Conn, StoreError};

/// The longest answer accepted from the console, before the network's own count.
const MAX_ANSWER: usize = 3000;

/// Keeps the posts of one page, each in its incident's inbox (see
/// [`crate::domain::inbox::incident_of`]); posts of no open incident are left. Returns how many
/// were new.
pub async fn receive(
    env: &Env,
    conn: &mut Conn,
    channel: &str,
    posts: &[Post],
    known: &HashMap<String, i64>,
    open: &[(i64, DateTime<Utc>)],
    now: DateTime<Utc>,
) -> Result<usize, CommandError> {
    let max = i64::from(env.config.inbox.max_items_per_incident);
    let mut new = 0;
    for p in posts {
        let inbound = Inbound {
            thread: &p.thread,
            posted_at: p.posted_at,
        };
        let Some(incident_id) = incident_of(&inbound, known, open) else {
            continue;
        };
        let kept = store::keep(
            conn,
            &NewItem {
                incident_id,
                channel,
                author_id: &p.author_id,
                handle: &p.handle,
                name: &p.name,
                remote_id: &p.remote_id,
                root_ref: p.root_ref.as_deref(),
                body: &p.text,
                url: p.url.as_deref(),
                posted_at: p.posted_at,
            },
            max,
            now,
        )
        .await?;
        match kept {
            Kept::New => new += 1,
            Kept::Seen => {}
            Kept::Dropped => {
                tracing::warn!(
                    incident.id = incident_id,
                    channel,
                    "inbox full; a post was not kept"
                )
            }
        }
    }
    Ok(new)
}

/// Who holds a claim, as the inbox shows it: an operator by address, others by their display.
pub fn claimant(actor: &Actor) -> String {
    match actor {
        Actor::Operator(email) => email.clone(),
        other => other.to_string(),
    }
}

/// Claims a conversation for the actor. Refused (with who holds it) if someone else does.
pub async fn claim(
    conn: &mut Conn,
    actor: &Actor,
    conversation_id: i64,
    now: DateTime<Utc>,
) -> Result<Claim, CommandError> {
    let who = claimant(actor);
    let claim = store::claim(conn, conversation_id, &who, now).await?;
    if claim == Claim::Claimed {
        let c = store::conversation(conn, conversation_id).await?;
        audit::record(
            conn,
            &actor.to_string(),
            "inbox.claim",
            c.as_ref().map(|c| c.incident_id),
            &json!({ "conversation_id": conversation_id,
                     "author": c.as_ref().map(|c| c.author_handle.clone()) }),
            now,
        )
        .await?;
    }
    Ok(claim)
}

/// Why an answer was not queued.
#[derive(Debug, thiserror::Error)]
pub enum AnswerRefused {
    #[error("conversation {0} does not exist")]
    Missing(i64),
    #[error("{0} holds this conversation; only they answer it")]
    HeldBy(String),
    #[error("claim this conversation before answering it")]
    Unclaimed,
    #[error(transparent)]
    Command(#[from] CommandError),
}

impl From<StoreError> for AnswerRefused {
    fn from(e: StoreError) -> Self {
        AnswerRefused::Command(e.into())
    }
}

/// Queues the claimer's answer as a reply to the customer's latest post, measured as the
/// network counts; marks the conversation answered. Returns the delivery's id.
pub async fn answer(
    conn: &mut Conn,
    actor: &Actor,
    conversation_id: i64,
    text: &str,
    listener: &dyn Listener,
    now: DateTime<Utc>,
) -> Result<i64, AnswerRefused> {
    let c = store::conversation(conn, conversation_id)
        .await?
        .ok_or(AnswerRefused::Missing(conversation_id))?;
    match &c.claimed_by {
        None => return Err(AnswerRefused::Unclaimed),
        Some(holder) if *holder != claimant(actor) => {
            return Err(AnswerRefused::HeldBy(holder.clone()))
        }
        Some(_) => {}
    }
    let text = check_text("text", text, MAX_ANSWER).map_err(CommandError::from)?;
    let item = store::latest_item(conn, c.id)
        .await?
        .ok_or(AnswerRefused::Missing(conversation_id))?;
    let reply = reply_to(&c, &item, listener, text, now);
    let (length, limit) = listener.measure(&reply);
    if length > limit {
        return Err(CommandError::from(Invalid::new(
            "text",
            format!(
                "is {length} characters long as {} counts them; the limit is {limit}",
                listener.network()
            ),
        ))
        .into());
    }
    let id = queue(conn, &c, &item, &reply, "answer", &actor.to_string(), now).await?;
    audit::record(
        conn,
        &actor.to_string(),
        "inbox.answer",
        Some(c.incident_id),
        &json!({ "conversation_id": c.id, "delivery_id": id }),
        now,
    )
    .await?;
    Ok(id)
}

fn reply_to(
    c: &Conversation,
    item: &Item,
    listener: &dyn Listener,
    text: String,
    now: DateTime<Utc>,
) -> Reply {
    let mastodon = listener.network() == "mastodon";
    Reply {
        conversation_id: c.id,
        to: item.remote_id.clone(),
        root: if mastodon {
            None
        } else {
            Some(
                item.root_ref
                    .clone()
                    .unwrap_or_else(|| item.remote_id.clone()),
            )
        },
        mention: mastodon.then(|| c.author_handle.clone()),
        text,
        posted_at: now,
    }
}

async fn queue(
    conn: &mut Conn,
    c: &Conversation,
    item: &Item,
    reply: &Reply,
    kind: &str,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<i64, CommandError> {
    let payload = serde_json::to_string(reply).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let id = deliveries::insert(
        conn,
        &deliveries::NewDelivery {
            incident_id: c.incident_id,
            update_id: None,
            channel: &c.channel,
            audience: Audience::Reply,
            payload: &payload,
            now,
        },
    )
    .await?;
    store::add_answer(
        conn,
        &NewAnswer {
            conversation_id: c.id,
            item_id: item.id,
            delivery_id: id,
            kind,
            body: &reply.text,
            actor,
            now,
        },
    )
    .await?;
    Ok(id)
}

/// Turns the "it is fixed" replies of an incident on or off.
pub async fn set_tell_fixed(
    conn: &mut Conn,
    actor: &Actor,
    incident_id: i64,
    tell: bool,
    now: DateTime<Utc>,
) -> Result<(), CommandError> {
    let incident = incidents::get(conn, incident_id)
        .await?
        .ok_or(CommandError::NotFound(incident_id))?;
    store::set_tell_fixed(conn, incident.id, tell).await?;
    audit::record(
        conn,
        &actor.to_string(),
        "inbox.tell_fixed",
        Some(incident_id),
        &json!({ "tell_fixed": tell }),
        now,
    )
    .await?;
    Ok(())
}

/// When an incident resolves: each answered conversation not yet told gets one reply in its
/// thread saying it is fixed, unless the incident opted out. Returns how many were queued.
pub async fn close_loop(
    env: &Env,
    conn: &mut Conn,
    incident: &Incident,
    now: DateTime<Utc>,
) -> Result<usize, CommandError> {
    let (tell, _) = store::incident_settings(conn, incident.id).await?;
    if !tell || env.config.inbox.channels.is_empty() {
        return Ok(0);
    }
    let text = fixed_reply(&incident.title, &incident_url(&env.config, incident.id));
    let mut queued = 0;
    for c in store::conversations(conn, incident.id).await? {
        if c.answered_at.is_none() || c.fixed_told_at.is_some() {
            continue;
        }
        let Some(item) = store::latest_item(conn, c.id).await? else {
            continue;
        };
        if !store::mark_fixed_told(conn, c.id, now).await? {
            continue;
        }
        let mastodon = env
            .config
            .channels
            .get(&c.channel)
            .is_some_and(|ch| ch.kind() == "mastodon");
        let reply = Reply {
            conversation_id: c.id,
            to: item.remote_id.clone(),
            root: (!mastodon).then(|| {
                item.root_ref
                    .clone()
                    .unwrap_or_else(|| item.remote_id.clone())
            }),
            mention: mastodon.then(|| c.author_handle.clone()),
            text: text.clone(),
            posted_at: now,
        };
        queue(conn, &c, &item, &reply, "fixed", "candor", now).await?;
        queued += 1;
    }
    Ok(queued)
}

/// Tells the ops channels, once per conversation, of conversations nobody claimed within
/// `inbox.unclaimed_after`. Returns how many were told.
pub async fn tell_waiting(
    env: &Env,
    conn: &mut Conn,
    now: DateTime<Utc>,
) -> Result<usize, CommandError> {
    if env.config.inbox.channels.is_empty() {
        return Ok(0);
    }
    let before = now - to_chrono(env.config.inbox.unclaimed_after);
    let mut told = 0;
    for c in store::waiting_untold(conn, before).await? {
        if !store::mark_waiting_told(conn, c.id, now).await? {
            continue;
        }
        let Some(incident) = incidents::get(conn, c.incident_id).await? else {
            continue;
        };
        let body = format!(
            "@{} wrote about this incident on {} {} ago and nobody has claimed the conversation. \
             Claim it in the incident's inbox and answer them.",
            c.author_handle,
            c.channel,
            humantime::format_duration(
                (now - c.first_at)
                    .to_std()
                    .map(|d| std::time::Duration::from_secs(d.as_secs() / 60 * 60))
                    .unwrap_or_default()
            )
        );
        notify_ops(
            env,
            conn,
            &incident,
            MessageKind::OpsInboxWaiting,
            &body,
            now,
        )
        .await?;
        told += 1;
    }
    Ok(told)
}
