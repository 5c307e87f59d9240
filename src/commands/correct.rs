//! Corrections of published updates: never a silent edit. The update's row stays as it was
//! posted; the correction is a row of its own with the new words and the reason, audited, and
//! sent through the outbox to every channel the original went to (Mastodon edits the original
//! post, and replies too when the meaning changed; other networks reply in the thread; email
//! mails everyone who got the original; webhooks get `update.corrected`). No time is taken
//! from the caller: the correction is stamped `now`, the update keeps its own time.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::*;
use crate::channels::{CorrectionFacts, Message, MessageKind};
use crate::domain::correction;
use crate::domain::Invalid;
use crate::store::corrections::{self, NewCorrection};
use crate::store::{audit, deliveries, incidents, updates, Conn, StoreError};

/// An operator's correction of one update.
#[derive(Debug, Clone)]
pub struct Correct {
    pub message: String,
    pub reason: String,
    /// Whether the meaning changed (not just a slip of the pen).
    pub meaning_changed: bool,
}

/// Corrects update `update_id` of incident `incident_id`. Returns the correction's id.
#[tracing::instrument(skip_all, fields(actor = %crate::telemetry::actor(actor), incident.id = incident_id))]
pub async fn correct(
    env: &Env,
    conn: &mut Conn,
    actor: &Actor,
    (incident_id, update_id): (i64, i64),
    c: Correct,
    now: DateTime<Utc>,
) -> Result<i64, CommandError> {
    // Locks the incident: corrections of one incident are written one at a time.
    incidents::get_for_update(conn, env.backend, incident_id)
        .await?
        .ok_or(CommandError::NotFound(incident_id))?;
    let update = updates::get(conn, update_id)
        .await?
        .filter(|u| u.incident_id == incident_id)
        .ok_or_else(|| {
            Invalid::new(
                "update_id",
                format!("{update_id} is not an update of incident {incident_id}"),
            )
        })?;
    let (message, reason) =
        correction::check(update.kind, update.current_message(), &c.message, &c.reason)?;
    let author = actor.to_string();
    let id = corrections::insert(
        conn,
        &NewCorrection {
            update_id,
            incident_id,
            message: &message,
            reason: &reason,
            meaning_changed: c.meaning_changed,
            author: &author,
            now,
        },
    )
    .await?;

    // Every channel the original went to, with the original's own message as the base.
    let (channels, payload) = deliveries::reach_of_update(conn, update_id).await?;
    if let Some(payload) = payload {
        let original: Message =
            serde_json::from_str(&payload).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let tz = env.config.site.time_zone;
        let mut edited = original.clone();
        edited.body = correction::edited_body(&message, now, &reason, tz);
        let mut msg = original.clone();
        msg.kind = MessageKind::Correction;
        msg.body = correction::announcement(update.created_at, &message, &reason, tz);
        // The announcement is about the words, not the estimate or the next update then.
        msg.eta_line = None;
        msg.next_update_line = None;
        msg.signature = None;
        msg.posted_at = now;
        msg.correction = Some(CorrectionFacts {
            correction_id: id,
            update_id,
            original_posted_at: update.created_at,
            corrected_body: message.clone(),
            reason: reason.clone(),
            meaning_changed: c.meaning_changed,
            edited: Box::new(edited),
        });
        let payload =
            serde_json::to_string(&msg).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        for channel in &channels {
            enqueue(
                conn,
                incident_id,
                Some(update_id),
                channel,
                crate::domain::Audience::Public,
                &payload,
                now,
            )
            .await?;
        }
    }
    audit::record(
        conn,
        &author,
        "update.correct",
        Some(incident_id),
        &json!({ "update_id": update_id, "correction_id": id, "was": update.current_message(),
                 "now": message, "reason": reason, "meaning_changed": c.meaning_changed,
                 "channels": channels }),
        now,
    )
    .await?;
    Ok(id)
}
