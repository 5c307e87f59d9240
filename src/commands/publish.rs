//! Publishing: an update and one outbox delivery per channel, the message the channels get,
//! notices for the team. Every message Candor sends is enqueued here.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::channels::{ComponentFacts, Message, MessageKind};
use crate::config::Config;
use crate::domain::{Audience, ComponentStatus, UpdateKind};
use crate::store::incidents::{self, Incident};
use crate::store::updates::{self, NewUpdate};
use crate::store::{deliveries, Conn, StoreError};

use super::*;

/// The public link to an incident.
pub fn incident_url(config: &Config, id: i64) -> String {
    let base = config.site.public_url.as_str().trim_end_matches('/');
    format!("{base}/incidents/{id}")
}

/// Where the team acts on an incident or a window: its console page. Notices to the team link
/// here, not to the public page.
pub fn console_url(config: &Config, incident: &Incident) -> String {
    let base = config.site.public_url.as_str().trim_end_matches('/');
    let section = if incident.is_maintenance() {
        "maintenance"
    } else {
        "incidents"
    };
    format!("{base}/admin/{section}/{}", incident.id)
}

pub(super) fn component_names(
    config: &Config,
    components: &BTreeMap<String, ComponentStatus>,
) -> Vec<String> {
    components
        .iter()
        .filter(|(_, s)| **s != ComponentStatus::Operational)
        .map(|(id, _)| config.component_name(id))
        .collect()
}

/// Writes the update and one public delivery per public channel. Returns the update's id.
pub(super) async fn publish(
    env: &Env,
    conn: &mut Conn,
    incident: &Incident,
    kind: UpdateKind,
    body: &str,
    author: &str,
    now: DateTime<Utc>,
) -> Result<i64, CommandError> {
    publish_as(
        env,
        conn,
        incident,
        kind,
        message_kind(kind),
        body,
        author,
        now,
    )
    .await
}

/// The message kind the channels see for an update of `kind`.
pub(super) fn message_kind(kind: UpdateKind) -> MessageKind {
    match kind {
        UpdateKind::Operator => MessageKind::Operator,
        UpdateKind::Scheduled => MessageKind::Scheduled,
        UpdateKind::Overdue => MessageKind::Overdue,
        UpdateKind::Resolution => MessageKind::Resolution,
        UpdateKind::Notice => MessageKind::MaintenanceUpdated,
    }
}

/// [`publish`] with the message kind the channels see chosen by the caller.
#[allow(clippy::too_many_arguments)]
pub(super) async fn publish_as(
    env: &Env,
    conn: &mut Conn,
    incident: &Incident,
    kind: UpdateKind,
    message_kind: MessageKind,
    body: &str,
    author: &str,
    now: DateTime<Utc>,
) -> Result<i64, CommandError> {
    let extra = Extra::default();
    publish_with(
        env,
        conn,
        incident,
        (kind, message_kind),
        body,
        author,
        &extra,
        now,
    )
    .await
}

/// What a message says besides its words: who signs it (Candor's own messages, signed last in
/// every post) and how the estimate moved with it.
#[derive(Debug, Clone, Default)]
pub struct Extra {
    pub signature: Option<String>,
    pub eta_change: Option<EtaChange>,
}

/// [`publish_as`] with a signature and the estimate's move. The stored update (status page,
/// API, feeds) ends with the signature; channels get it as [`Message::signature`].
#[allow(clippy::too_many_arguments)]
pub(super) async fn publish_with(
    env: &Env,
    conn: &mut Conn,
    incident: &Incident,
    (kind, message_kind): (UpdateKind, MessageKind),
    body: &str,
    author: &str,
    extra: &Extra,
    now: DateTime<Utc>,
) -> Result<i64, CommandError> {
    let components = incidents::components(conn, incident.id).await?;
    let stored = match &extra.signature {
        Some(sig) => format!("{body}\n\n— {sig}"),
        None => body.to_string(),
    };
    let update_id = updates::insert(
        conn,
        &NewUpdate {
            incident_id: incident.id,
            kind,
            status: incident.status,
            message: &stored,
            eta_at: incident.eta_at,
            next_update_at: incident.next_update_at,
            components: &components,
            author,
            now,
        },
    )
    .await?;
    let msg = message(
        env,
        incident,
        &components,
        (Audience::Public, message_kind),
        Some(update_id),
        body,
        extra,
        now,
    );
    let payload = serde_json::to_string(&msg).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    // Channels limited to some impacts or components (`only:`) get no delivery for others.
    let channels: Vec<String> = env
        .config
        .public_channels()
        .filter(|id| {
            env.config.channels[*id]
                .only()
                .accepts(incident.impact, components.keys().map(String::as_str))
        })
        .map(str::to_string)
        .collect();
    for channel in &channels {
        enqueue(
            conn,
            incident.id,
            Some(update_id),
            channel,
            Audience::Public,
            &payload,
            now,
        )
        .await?;
    }
    Ok(update_id)
}

/// Writes one delivery per ops channel carrying a notice for the team.
pub(crate) async fn notify_ops(
    env: &Env,
    conn: &mut Conn,
    incident: &Incident,
    kind: MessageKind,
    body: &str,
    now: DateTime<Utc>,
) -> Result<(), CommandError> {
    let components = incidents::components(conn, incident.id).await?;
    let mut msg = message(
        env,
        incident,
        &components,
        (Audience::Ops, kind),
        None,
        body,
        &Extra::default(),
        now,
    );
    msg.incident_url = console_url(&env.config, incident);
    let payload = serde_json::to_string(&msg).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    for channel in &env.config.ops.channels {
        enqueue(
            conn,
            incident.id,
            None,
            channel,
            Audience::Ops,
            &payload,
            now,
        )
        .await?;
    }
    Ok(())
}

pub(super) async fn enqueue(
    conn: &mut Conn,
    incident_id: i64,
    update_id: Option<i64>,
    channel: &str,
    audience: Audience,
    payload: &str,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    deliveries::insert(
        conn,
        &deliveries::NewDelivery {
            incident_id,
            update_id,
            channel,
            audience,
            payload,
            now,
        },
    )
    .await
}

#[allow(clippy::too_many_arguments)]
pub(super) fn message(
    env: &Env,
    incident: &Incident,
    components: &BTreeMap<String, ComponentStatus>,
    (audience, kind): (Audience, MessageKind),
    update_id: Option<i64>,
    body: &str,
    extra: &Extra,
    now: DateTime<Utc>,
) -> Message {
    let tz = env.config.site.time_zone;
    let open = incident.is_open();
    let (eta_line, next_update_line) = if incident.is_maintenance() {
        maintenance::message_lines(incident, now, tz)
    } else {
        let eta_line = open.then(|| eta_line(incident.eta_at, extra.eta_change.as_ref(), now, tz));
        let next_update_line = incident
            .next_update_at
            .filter(|_| open)
            .map(|t| next_update_line(t, now, tz));
        (eta_line, next_update_line)
    };
    // An apology's words are about the estimate that passed: a line saying so again would
    // repeat them.
    let eta_line = eta_line.filter(|_| kind != MessageKind::Overdue);
    Message {
        audience,
        kind,
        site_name: env.config.site.name.clone(),
        incident_id: incident.id,
        incident_url: incident_url(&env.config, incident.id),
        title: incident.title.clone(),
        impact: incident.impact,
        status: incident.status,
        components: component_facts(env, components),
        update_id,
        body: body.to_string(),
        started_at: incident.started_at,
        eta_at: incident.eta_at,
        next_update_at: incident
            .next_update_at
            .filter(|_| next_update_line.is_some()),
        eta_line,
        next_update_line,
        signature: extra.signature.clone(),
        posted_at: now,
        correction: None,
    }
}

pub(super) fn component_facts(
    env: &Env,
    components: &BTreeMap<String, ComponentStatus>,
) -> Vec<ComponentFacts> {
    components
        .iter()
        .map(|(id, status)| ComponentFacts {
            id: id.clone(),
            name: env.config.component_name(id),
            status: *status,
        })
        .collect()
}

/// The public message an update would make, built exactly as [`publish`] builds it, for the
/// console's preview. `incident` is the incident as it would stand after the update.
pub fn draft_message(
    env: &Env,
    incident: &Incident,
    components: &BTreeMap<String, ComponentStatus>,
    resolution: bool,
    body: &str,
    eta_change: Option<EtaChange>,
    now: DateTime<Utc>,
) -> Message {
    let kind = if resolution {
        MessageKind::Resolution
    } else {
        MessageKind::Operator
    };
    let extra = Extra {
        signature: None,
        eta_change,
    };
    message(
        env,
        incident,
        components,
        (Audience::Public, kind),
        None,
        body,
        &extra,
        now,
    )
}
