//! Postmortems: drafted after resolution, published on the incident's page, in the v2 JSON and
//! the feeds, and announced to every public channel as a final post linking to it. Action
//! items with owners and due dates are listed publicly; each change is audited.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::*;
use crate::channels::MessageKind;
use crate::domain::postmortem::{check_action, check_body};
use crate::domain::{Audience, Invalid};
use crate::store::incidents::{self, Incident};
use crate::store::{audit, postmortems, Conn, StoreError};

/// The resolved incident a postmortem belongs to.
async fn resolved(env: &Env, conn: &mut Conn, id: i64) -> Result<Incident, CommandError> {
    let i = incidents::get_for_update(conn, env.backend, id)
        .await?
        .ok_or(CommandError::NotFound(id))?;
    if i.is_open() || i.is_maintenance() {
        return Err(Invalid::new(
            "incident",
            format!("a postmortem follows an incident's resolution; incident {id} is not a resolved incident"),
        )
        .into());
    }
    Ok(i)
}

/// Saves the postmortem's Markdown (a draft, or the published one's new words).
pub async fn save_postmortem(
    env: &Env,
    conn: &mut Conn,
    actor: &Actor,
    id: i64,
    body: &str,
    now: DateTime<Utc>,
) -> Result<(), CommandError> {
    resolved(env, conn, id).await?;
    let body = check_body(body)?;
    postmortems::save(conn, id, &body, &actor.to_string(), now).await?;
    audit::record(
        conn,
        &actor.to_string(),
        "postmortem.save",
        Some(id),
        &json!({ "chars": body.chars().count() }),
        now,
    )
    .await?;
    Ok(())
}

/// Publishes the saved postmortem and posts a final message linking to it on every public
/// channel that took the incident.
pub async fn publish_postmortem(
    env: &Env,
    conn: &mut Conn,
    actor: &Actor,
    id: i64,
    now: DateTime<Utc>,
) -> Result<(), CommandError> {
    let incident = resolved(env, conn, id).await?;
    if postmortems::get(conn, id).await?.is_none() {
        return Err(Invalid::new("body", "save the postmortem before publishing it").into());
    }
    if !postmortems::publish(conn, id, now).await? {
        return Err(Invalid::new("postmortem", "it is already published").into());
    }
    let components = incidents::components(conn, id).await?;
    let url = incident_url(&env.config, id);
    let body = format!(
        "We have published our postmortem of this incident: what happened, why, and what we are changing so it does not happen again. Read it at {url}#postmortem"
    );
    let msg = message(
        env,
        &incident,
        &components,
        (Audience::Public, MessageKind::Postmortem),
        None,
        &body,
        &Extra::default(),
        now,
    );
    let payload = serde_json::to_string(&msg).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let channels: Vec<String> = env
        .config
        .public_channels()
        .filter(|c| {
            env.config.channels[*c]
                .only()
                .accepts(incident.impact, components.keys().map(String::as_str))
        })
        .map(str::to_string)
        .collect();
    for channel in &channels {
        enqueue(conn, id, None, channel, Audience::Public, &payload, now).await?;
    }
    audit::record(
        conn,
        &actor.to_string(),
        "postmortem.publish",
        Some(id),
        &json!({ "channels": channels }),
        now,
    )
    .await?;
    Ok(())
}

/// Adds an action item (due date `YYYY-MM-DD`, in the site's zone).
pub async fn add_action(
    env: &Env,
    conn: &mut Conn,
    actor: &Actor,
    id: i64,
    (text, owner, due_on): (&str, &str, &str),
    now: DateTime<Utc>,
) -> Result<i64, CommandError> {
    resolved(env, conn, id).await?;
    if postmortems::get(conn, id).await?.is_none() {
        return Err(Invalid::new("body", "save the postmortem before adding action items").into());
    }
    let a = check_action(text, owner, due_on)?;
    let action = postmortems::add_action(conn, id, (&a.text, &a.owner, a.due_on), now).await?;
    audit::record(
        conn,
        &actor.to_string(),
        "postmortem.action_add",
        Some(id),
        &json!({ "action_id": action, "text": a.text, "owner": a.owner, "due_on": a.due_on }),
        now,
    )
    .await?;
    Ok(action)
}

/// Marks an action item done.
pub async fn complete_action(
    env: &Env,
    conn: &mut Conn,
    actor: &Actor,
    id: i64,
    action: i64,
    now: DateTime<Utc>,
) -> Result<(), CommandError> {
    resolved(env, conn, id).await?;
    if !postmortems::complete_action(conn, id, action, now).await? {
        return Err(Invalid::new(
            "action_id",
            format!("{action} is not an open action item of incident {id}"),
        )
        .into());
    }
    audit::record(
        conn,
        &actor.to_string(),
        "postmortem.action_done",
        Some(id),
        &json!({ "action_id": action }),
        now,
    )
    .await?;
    Ok(())
}
