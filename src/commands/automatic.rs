//! Candor's own public messages: the holding update when a promised update falls due and nobody
//! wrote, and the apology when an estimate (or a maintenance window's planned end) passes. Each
//! is composed by its template from what is known at that moment ([`wording::known`]): how long
//! it has been, what changed since Candor last spoke, the team's last words and when they came,
//! how many estimates have passed. The message's place in the incident picks the phrasing, so no
//! two of an incident's automatic messages read alike.

use chrono::{DateTime, Utc};
use minijinja::context;
use serde_json::{json, Value};

use super::{
    component_names, console_url, notify_ops, publish_with, revise, Actor, CommandError, Env, Extra,
};
use crate::channels::MessageKind;
use crate::domain::schedule::{due_action, next_update_after, DueAction};
use crate::domain::text::{human_duration, human_time};
use crate::domain::wording::{self, Change, Known, Moved, Now, Said};
use crate::domain::{ComponentStatus, UpdateKind};
use crate::store::audit;
use crate::store::incidents::{self, Incident, Revision};
use crate::store::{schedule, updates, Conn};

/// The longest quote of the team's last words in an automatic message.
const QUOTE_CHARS: usize = 280;

/// Posts one of Candor's own public updates (a holding update or an apology): the facts as they
/// are, signed, with a new promise of the next update. Returns the incident after it and the
/// update id.
#[allow(clippy::too_many_arguments)]
async fn post_own_update(
    env: &Env,
    conn: &mut Conn,
    incident: &Incident,
    kind: UpdateKind,
    body: &str,
    signature: String,
    apologised_eta_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<(Incident, i64), CommandError> {
    let cadence = env.config.policies.for_impact(incident.impact).update_every;
    let revision = Revision {
        next_update_at: Some(next_update_after(now, None, cadence)),
        resolved_at: None,
        apologised_eta_at,
        ..Revision::of(incident, now)
    };
    let after = revise(conn, &revision).await?;
    let extra = Extra {
        signature: Some(signature),
        eta_change: None,
    };
    let update_id = publish_with(
        env,
        conn,
        &after,
        (kind, super::message_kind(kind)),
        body,
        &Actor::Scheduler.to_string(),
        &extra,
        now,
    )
    .await?;
    Ok((after, update_id))
}

/// "A, B and C".
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// What an automatic message of `incident` can say now: the facts of [`wording::known`], and
/// the same as its template's context with the affected components by name.
async fn facts(
    env: &Env,
    conn: &mut Conn,
    incident: &Incident,
    now: DateTime<Utc>,
) -> Result<(Known, Value), CommandError> {
    let config = &env.config;
    let id = incident.id;
    let current = incidents::components(conn, id).await?;
    let scheduler = Actor::Scheduler.to_string();
    let history: Vec<Said> = updates::for_incident(conn, id)
        .await?
        .into_iter()
        .map(|u| Said {
            automatic: matches!(u.kind, UpdateKind::Scheduled | UpdateKind::Overdue)
                || u.author == scheduler,
            kind: u.kind,
            at: u.created_at,
            message: crate::channels::truncate(&u.message, QUOTE_CHARS),
            status: u.status,
            components: u.components,
            eta_at: u.eta_at,
        })
        .collect();
    let moves: Vec<Moved> = incidents::eta_revisions(conn, id)
        .await?
        .into_iter()
        .map(|r| Moved {
            at: r.created_at,
            old: r.old_eta,
            new: r.new_eta,
            reason: r.reason,
        })
        .collect();
    let state = Now {
        at: now,
        started_at: incident.started_at,
        status: incident.status,
        components: &current,
        eta_at: incident.eta_at,
        tz: config.site.time_zone,
    };
    let mut known = wording::known(&history, &state, &moves);
    let name = |id: &str| config.component_name(id);
    for c in &mut known.changes {
        if let Change::Component { name: n, .. } = c {
            *n = name(n);
        }
    }
    let affected: Vec<String> = current
        .iter()
        .filter(|(_, s)| **s != ComponentStatus::Operational)
        .map(|(id, s)| format!("{} ({})", name(id), s.as_str().replace('_', " ")))
        .collect();
    let mut extra = serde_json::to_value(&known).unwrap_or_default();
    if let Value::Object(m) = &mut extra {
        m.insert("affected_text".into(), json!(and_list(&affected)));
        m.insert("affected_count".into(), json!(affected.len()));
        m.insert("missed_words".into(), json!(count_words(known.missed)));
    }
    Ok((known, extra))
}

/// "one", "two", ... "twenty"; digits beyond.
fn count_words(n: usize) -> String {
    const WORDS: [&str; 21] = [
        "no",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
        "twenty",
    ];
    WORDS
        .get(n)
        .map(|w| w.to_string())
        .unwrap_or_else(|| n.to_string())
}

/// Carries out a scheduled action if it is still due under the row lock, exactly once. Returns
/// false when it was no longer due or another scheduler already did it.
#[tracing::instrument(skip_all, fields(actor = "candor", incident.id = id, action = action.key().0))]
pub async fn scheduled(
    env: &Env,
    conn: &mut Conn,
    id: i64,
    action: DueAction,
    now: DateTime<Utc>,
) -> Result<bool, CommandError> {
    let Some(incident) = incidents::get_for_update(conn, env.backend, id).await? else {
        return Ok(false);
    };
    let Some(promises) = incident.promises().filter(|_| incident.is_open()) else {
        return Ok(false);
    };
    if due_action(&promises, now, env.config.ops.remind_before) != Some(action) {
        return Ok(false);
    }
    let (name, due_at) = action.key();
    if !schedule::claim(conn, id, name, due_at, now).await? {
        return Ok(false);
    }
    let actor = Actor::scheduler();
    let tz = env.config.site.time_zone;
    let components = component_names(&env.config, &incidents::components(conn, id).await?);
    let elapsed = human_duration(now - incident.started_at);
    let signature = incident
        .owner
        .clone()
        .unwrap_or_else(|| format!("The {} team", env.config.site.name));
    let update_id = match action {
        DueAction::OpsReminder { promised } => {
            incidents::mark_reminded(conn, id, promised).await?;
            let body = env.renderer.render(
                "ops/reminder.txt.j2",
                context! {
                    site_name => env.config.site.name, incident_id => id, title => incident.title,
                    promised_text => human_time(promised, now, tz),
                    minutes_left => (promised - now).num_minutes().max(0) + 1,
                    incident_url => console_url(&env.config, &incident),
                },
            )?;
            notify_ops(env, conn, &incident, MessageKind::OpsReminder, &body, now).await?;
            None
        }
        DueAction::Holding { .. } => {
            env.metrics.promise(crate::metrics::Promise::HoldingUpdate);
            let (known, extra) = facts(env, conn, &incident, now).await?;
            let body = env.renderer.render(
                "messages/holding.txt.j2",
                context! {
                    title => incident.title, elapsed, components,
                    status => incident.status,
                    eta_text => incident.eta_at.map(|e| human_time(e, now, tz)),
                    eta_passed => incident.eta_at.is_some_and(|e| e <= now),
                    variant => known.seq, latest => known.team_words.clone(), signature,
                    ..minijinja::Value::from_serialize(&extra)
                },
            )?;
            let (_, update_id) = post_own_update(
                env,
                conn,
                &incident,
                UpdateKind::Scheduled,
                &body,
                signature,
                incident.apologised_eta_at,
                now,
            )
            .await?;
            Some(update_id)
        }
        DueAction::Apology { eta } => {
            env.metrics.apology();
            let (known, extra) = facts(env, conn, &incident, now).await?;
            let previous_apologies = known.missed;
            let eta_text = human_time(eta, now, tz);
            let apology = if incident.is_maintenance() {
                "messages/maintenance_overrun.txt.j2"
            } else {
                "messages/apology.txt.j2"
            };
            let body = env.renderer.render(
                apology,
                context! {
                    title => incident.title, eta_text, elapsed, components, previous_apologies,
                    signature, missed_ordinal => wording::ordinal(previous_apologies + 1),
                    ..minijinja::Value::from_serialize(&extra)
                },
            )?;
            let (after, update_id) = post_own_update(
                env,
                conn,
                &incident,
                UpdateKind::Overdue,
                &body,
                signature,
                Some(eta),
                now,
            )
            .await?;
            let ask = env.renderer.render(
                if incident.is_maintenance() {
                    "ops/maintenance_overrun.txt.j2"
                } else {
                    "ops/eta_passed.txt.j2"
                },
                context! {
                    site_name => env.config.site.name, incident_id => id, title => incident.title,
                    eta_text, incident_url => console_url(&env.config, &incident),
                },
            )?;
            notify_ops(env, conn, &after, MessageKind::OpsEtaPassed, &ask, now).await?;
            Some(update_id)
        }
    };
    record_done(conn, &actor, id, name, due_at, update_id, now).await?;
    Ok(true)
}

/// Closes a scheduled action claimed with `schedule::claim`: the update it published (if any)
/// goes on its schedule row, and the audit log says what the scheduler did. Shared by an
/// incident's promises and a maintenance window's notices.
pub(super) async fn record_done(
    conn: &mut Conn,
    actor: &Actor,
    id: i64,
    name: &str,
    due_at: DateTime<Utc>,
    update_id: Option<i64>,
    now: DateTime<Utc>,
) -> Result<(), CommandError> {
    if let Some(update_id) = update_id {
        schedule::set_update(conn, id, name, due_at, update_id).await?;
    }
    audit::record(
        conn,
        &actor.to_string(),
        &format!("scheduler.{name}"),
        Some(id),
        &json!({ "due_at": due_at, "update_id": update_id }),
        now,
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn lists_read_like_prose() {
        let s = |v: &[&str]| super::and_list(&v.iter().map(|x| x.to_string()).collect::<Vec<_>>());
        assert_eq!(s(&["A"]), "A");
        assert_eq!(s(&["A", "B"]), "A and B");
        assert_eq!(s(&["A", "B", "C"]), "A, B and C");
        assert_eq!(super::count_words(2), "two");
    }
}
