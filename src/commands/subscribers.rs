//! Email subscribers: every change to who hears about incidents by email, one command each
//! (ask to subscribe, confirm, unsubscribe, send the confirmation again, remove). Each takes
//! the actor, validates, writes on the caller's transaction, audits, and queues the
//! confirmation mail in the outbox in that same transaction, so a mail the customer was told
//! about is never lost: the email channel's worker sends it, retried like every delivery.
//!
//! Audit entries name the subscriber by id only, never by address.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{Actor, Env};
use crate::channels::Confirmation;
use crate::config::Config;
use crate::domain::subscriber::SubscriberEmail;
use crate::domain::Invalid;
use crate::store::subscribers::{self, UnsubscribeKey};
use crate::store::{audit, deliveries, subscribe_quota, Conn, StoreError};

/// A pending address is sent a confirmation at most this often, however often it is entered.
const RESEND_AFTER_SECS: i64 = 60;

/// Why a subscriber command did not happen.
#[derive(Debug, thiserror::Error)]
pub enum SubscriberError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("email subscriptions are not enabled on this site")]
    NoEmailChannel,
    /// The address's confirmation mails for today are used up.
    #[error("this address has been sent all the confirmation mails it may get today")]
    AddressLimited,
    #[error("no subscriber with id {0}")]
    NotFound(i64),
    #[error("subscriber {0} does not exist or is not waiting for confirmation")]
    NotPending(i64),
    /// A confirmation or unsubscribe link that is unknown, expired or already used.
    #[error("this link is not valid, has expired or was already used")]
    LinkNotValid,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A request to subscribe, checked: a valid address, and components that exist (`None` for
/// every component). Only [`SubscribeRequest::parse`] makes one.
#[derive(Debug, Clone)]
pub struct SubscribeRequest {
    email: SubscriberEmail,
    components: Option<Vec<String>>,
}

impl SubscribeRequest {
    /// Checks what the form or the API sent. An empty list of components means every one.
    pub fn parse(
        config: &Config,
        email: &str,
        components: Option<Vec<String>>,
    ) -> Result<Self, Invalid> {
        let email = SubscriberEmail::parse(email).map_err(|e| Invalid::new("email", e))?;
        let components = components.filter(|c| !c.is_empty());
        for (i, c) in components.iter().flatten().enumerate() {
            if config.component(c).is_none() {
                return Err(Invalid::new(
                    format!("components[{i}]"),
                    format!("unknown component `{}`", crate::channels::truncate(c, 40)),
                ));
            }
        }
        Ok(Self { email, components })
    }
}

/// The email channel subscribers belong to, by id.
fn email_channel(env: &Env) -> Result<&str, SubscriberError> {
    env.config
        .email_channel()
        .map(|(id, _)| id)
        .ok_or(SubscriberError::NoEmailChannel)
}

/// How many subscription requests (so confirmation mails) one address may make a day.
fn per_address_per_day(env: &Env) -> u32 {
    env.config
        .email_channel()
        .map(|(_, cfg)| cfg.subscribe_per_address_per_day.max(1))
        .unwrap_or(1)
}

/// Records a request to subscribe and, when a confirmation is due (a new, pending or
/// unsubscribed address not asked for in the last minute), queues the confirmation mail.
/// Every request counts against the address's daily cap, whatever the address's state, so the
/// outcome says nothing about whether it is known; over the cap nothing is written.
#[tracing::instrument(skip_all, fields(actor = %crate::telemetry::actor(actor)))]
pub async fn request(
    env: &Env,
    conn: &mut Conn,
    actor: &Actor,
    r: &SubscribeRequest,
    now: DateTime<Utc>,
) -> Result<(), SubscriberError> {
    let channel = email_channel(env)?;
    if !subscribe_quota::take(conn, &r.email, per_address_per_day(env), now).await? {
        return Err(SubscriberError::AddressLimited);
    }
    let resend_after = now - chrono::Duration::seconds(RESEND_AFTER_SECS);
    let due =
        subscribers::subscribe(conn, &r.email, r.components.as_deref(), now, resend_after).await?;
    let Some(id) = due else {
        return Ok(());
    };
    let queued = queue_confirmation(conn, channel, id, now).await?;
    audit::record(
        conn,
        &actor.to_string(),
        "subscriber.subscribe",
        None,
        &json!({ "subscriber_id": id, "components": r.components, "mail_queued": queued }),
        now,
    )
    .await?;
    Ok(())
}

/// Sends a pending subscriber the confirmation again (operators): a new mail with a new link,
/// queued in the outbox. The old link works until the new mail has gone out.
#[tracing::instrument(skip_all, fields(actor = %crate::telemetry::actor(actor), subscriber.id = id))]
pub async fn resend_confirmation(
    env: &Env,
    conn: &mut Conn,
    actor: &Actor,
    id: i64,
    now: DateTime<Utc>,
) -> Result<(), SubscriberError> {
    let channel = email_channel(env)?;
    if !subscribers::ask_again(conn, id, now).await? {
        return Err(SubscriberError::NotPending(id));
    }
    let queued = queue_confirmation(conn, channel, id, now).await?;
    audit::record(
        conn,
        &actor.to_string(),
        "subscriber.resend_confirmation",
        None,
        &json!({ "subscriber_id": id, "mail_queued": queued }),
        now,
    )
    .await?;
    Ok(())
}

/// Queues subscriber `id`'s confirmation mail on `channel`, unless one is still waiting or
/// being sent (its mail is the one asked for; a second would only replace its link). Returns
/// whether a delivery was added.
async fn queue_confirmation(
    conn: &mut Conn,
    channel: &str,
    id: i64,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let payload = serde_json::to_string(&Confirmation { subscriber_id: id })
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    if deliveries::confirmation_queued(conn, channel, &payload).await? {
        return Ok(false);
    }
    deliveries::insert_confirmation(conn, channel, &payload, now).await?;
    Ok(true)
}

/// Confirms the subscription whose confirmation link carries `token`. Returns the
/// subscriber's id.
#[tracing::instrument(skip_all, fields(actor = %crate::telemetry::actor(actor)))]
pub async fn confirm(
    env: &Env,
    conn: &mut Conn,
    actor: &Actor,
    token: &str,
    now: DateTime<Utc>,
) -> Result<i64, SubscriberError> {
    email_channel(env)?;
    let id = subscribers::confirm(conn, token, now)
        .await?
        .ok_or(SubscriberError::LinkNotValid)?;
    audit::record(
        conn,
        &actor.to_string(),
        "subscriber.confirm",
        None,
        &json!({ "subscriber_id": id }),
        now,
    )
    .await?;
    Ok(id)
}

/// Unsubscribes whoever the unsubscribe link's `token` (checked with `key`) belongs to.
/// Following the link again is still fine (and audited once). Returns the subscriber's id.
#[tracing::instrument(skip_all, fields(actor = %crate::telemetry::actor(actor)))]
pub async fn unsubscribe(
    env: &Env,
    conn: &mut Conn,
    actor: &Actor,
    key: &UnsubscribeKey,
    token: &str,
    now: DateTime<Utc>,
) -> Result<i64, SubscriberError> {
    email_channel(env)?;
    let done = subscribers::unsubscribe(conn, key, token, now)
        .await?
        .ok_or(SubscriberError::LinkNotValid)?;
    if done.changed {
        audit::record(
            conn,
            &actor.to_string(),
            "subscriber.unsubscribe",
            None,
            &json!({ "subscriber_id": done.id }),
            now,
        )
        .await?;
    }
    Ok(done.id)
}

/// Removes a subscriber for good (operators and API tokens).
#[tracing::instrument(skip_all, fields(actor = %crate::telemetry::actor(actor), subscriber.id = id))]
pub async fn remove(
    env: &Env,
    conn: &mut Conn,
    actor: &Actor,
    id: i64,
    now: DateTime<Utc>,
) -> Result<(), SubscriberError> {
    email_channel(env)?;
    if !subscribers::remove(conn, id).await? {
        return Err(SubscriberError::NotFound(id));
    }
    audit::record(
        conn,
        &actor.to_string(),
        "subscriber.remove",
        None,
        &json!({ "subscriber_id": id }),
        now,
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        let yaml = r#"
site: { name: "Acme", public_url: "https://status.acme.test", support_contact: "help@acme.test" }
database: { url: "sqlite::memory:" }
components:
  - { id: api, name: "Public API" }
channels:
  log: { type: log, path: "/tmp/candor-test.log" }
"#;
        Config::from_yaml_with_env(yaml, &crate::config::Overrides::default(), &|_| None)
            .expect("valid config")
    }

    #[test]
    fn a_request_names_the_field_it_breaks() {
        let c = config();
        let e = SubscribeRequest::parse(&c, "not an address", None).unwrap_err();
        assert_eq!(e.field, "email");
        let e = SubscribeRequest::parse(&c, "a@example.com", Some(vec!["api".into(), "x".into()]))
            .unwrap_err();
        assert_eq!(e.to_string(), "components[1]: unknown component `x`");
        let r = SubscribeRequest::parse(&c, " A@Example.COM ", Some(vec![])).unwrap();
        assert_eq!(r.email.as_str(), "A@example.com");
        assert_eq!(r.components, None, "an empty choice is every component");
    }
}
