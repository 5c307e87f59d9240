//! The `email` channel: one delivery fans out to every confirmed subscriber who chose the
//! incident's components (or everything), over a pool of SMTP connections (lettre, rustls).
//!
//! Subscribers are read in pages by id (keyset pagination), so memory does not grow with their
//! number. `connections` senders (tasks of their own) each keep one SMTP session open for the
//! whole fan-out, pipelined when the server offers it (`smtp.rs`); each recipient's copy is a
//! template filled in (`compose.rs`). Confirmation mails are deliveries of their own (one per
//! request, through the outbox like every message) and go through lettre's pooled
//! `AsyncSmtpTransport`. Every recipient's outcome is recorded against the delivery (one row
//! per delivery and subscriber), so a retry or a restart resumes where the last attempt
//! stopped: nobody gets the same update twice and nobody is skipped. The window left open is the messages the server had
//! accepted in the last moments before a hard kill, whose rows were still being written.
//!
//! Each mail is multipart text and HTML from `templates/email/update/`, carries a one-click
//! `List-Unsubscribe` (RFC 8058), and threading headers: every update of an incident replies to
//! the first mail sent about it (the delivery's `remote_id` is the Message-ID).

mod compose;
mod confirm;
mod smtp;

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use lettre::message::header::HeaderName;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use minijinja::Value;
use serde_json::json;

use super::{Channel, Confirmation, DeliveryContext, Message, SendError, Sent};
use crate::config::{ComponentConfig, EmailConfig};
use crate::domain::subscriber::mask;
use crate::domain::Audience;
use crate::render::Renderer;
use crate::store::subscribers::{self, Recipient, SendRecord, UnsubscribeKey};
use crate::store::Db;
use compose::{Composer, Rendered, UNSUBSCRIBE_PLACEHOLDER};
use smtp::{Fail, NextEnvelope, Outgoing, Session, SmtpTarget};

pub struct EmailChannel {
    id: String,
    db: Db,
    renderer: Arc<Renderer>,
    /// For single mails (confirmations): lettre's pooled transport.
    transport: AsyncSmtpTransport<Tokio1Executor>,
    /// For fan-outs: where and how each of the fan-out's own sessions connects.
    smtp: Arc<SmtpTarget>,
    from: Mailbox,
    /// The sender's domain: the right-hand side of Message-IDs.
    domain: String,
    site_name: String,
    public_url: String,
    /// Component names by id, for the confirmation mail's "you chose ...".
    component_names: std::collections::BTreeMap<String, String>,
    key: UnsubscribeKey,
    connections: usize,
    page_size: i64,
    limiter: Option<Arc<DefaultDirectRateLimiter>>,
    dkim: Option<Arc<lettre::message::dkim::DkimConfig>>,
    confirm_within: Duration,
    /// Public subscription requests, from everyone together.
    pub subscribe_limiter: DefaultDirectRateLimiter,
}

impl EmailChannel {
    pub fn new(
        id: &str,
        cfg: &EmailConfig,
        site_name: &str,
        public_url: &url::Url,
        components: &[ComponentConfig],
        db: Db,
        renderer: Arc<Renderer>,
    ) -> anyhow::Result<Self> {
        let url = url::Url::parse(cfg.smtp_url.expose())
            .map_err(|_| anyhow::anyhow!("channels.{id}.smtp_url is not a URL"))?;
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(cfg.smtp_url.expose())
            .map_err(|e| {
                anyhow::anyhow!(
                    "channels.{id}.smtp_url: {}",
                    scrub(&e.to_string(), cfg.password.as_ref().map(|p| p.expose()))
                )
            })?
            .pool_config(PoolConfig::new().max_size(cfg.connections))
            .timeout(Some(cfg.limits.timeout));
        if let Some(password) = &cfg.password {
            let user = percent_decode(url.username());
            anyhow::ensure!(
                !user.is_empty(),
                "channels.{id}.password is set but smtp_url names no user (smtp://USER@host)"
            );
            builder = builder.credentials(Credentials::new(user, password.expose().to_string()));
        }
        let from: Mailbox = cfg
            .from
            .parse()
            .map_err(|_| anyhow::anyhow!("channels.{id}.from is not an address"))?;
        let domain = from.email.domain().to_string();
        let dkim = match &cfg.dkim {
            None => None,
            Some(d) => {
                use lettre::message::dkim::{
                    DkimCanonicalization, DkimCanonicalizationType, DkimConfig,
                    DkimSigningAlgorithm, DkimSigningKey,
                };
                let pem = std::fs::read_to_string(&d.key_file).map_err(|e| {
                    anyhow::anyhow!(
                        "channels.{id}.dkim.key_file: cannot read {}: {e}",
                        d.key_file.display()
                    )
                })?;
                let algorithm = if d.algorithm == "ed25519" {
                    DkimSigningAlgorithm::Ed25519
                } else {
                    DkimSigningAlgorithm::Rsa
                };
                let key = DkimSigningKey::new(pem.trim(), algorithm).map_err(|_| {
                    anyhow::anyhow!(
                        "channels.{id}.dkim.key_file: not a {} private key (rsa: PKCS#1 PEM; ed25519: base64)",
                        d.algorithm
                    )
                })?;
                let headers = DKIM_HEADERS
                    .iter()
                    .map(|h| HeaderName::new_from_ascii_str(h))
                    .collect();
                Some(Arc::new(DkimConfig::new(
                    d.selector.clone(),
                    d.domain.clone(),
                    key,
                    headers,
                    DkimCanonicalization {
                        header: DkimCanonicalizationType::Relaxed,
                        body: DkimCanonicalizationType::Relaxed,
                    },
                )))
            }
        };
        let limiter = cfg
            .per_second
            .and_then(NonZeroU32::new)
            .map(|n| Arc::new(RateLimiter::direct(Quota::per_second(n))));
        let per_minute = NonZeroU32::new(cfg.subscribe_per_minute).unwrap_or(NonZeroU32::MIN);
        let smtp = Arc::new(SmtpTarget::from_url(&url, cfg)?);
        Ok(Self {
            id: id.to_string(),
            db,
            renderer,
            transport: builder.build(),
            smtp,
            from,
            domain,
            site_name: site_name.to_string(),
            public_url: public_url.as_str().trim_end_matches('/').to_string(),
            component_names: components
                .iter()
                .map(|c| (c.id.clone(), c.name.clone()))
                .collect(),
            key: UnsubscribeKey::new(cfg.token_secret.expose()),
            connections: cfg.connections as usize,
            page_size: i64::from(cfg.page_size),
            limiter,
            dkim,
            confirm_within: cfg.confirm_within,
            subscribe_limiter: RateLimiter::direct(Quota::per_minute(per_minute)),
        })
    }

    pub fn unsubscribe_key(&self) -> &UnsubscribeKey {
        &self.key
    }

    pub fn confirm_within(&self) -> Duration {
        self.confirm_within
    }

    /// The deterministic Message-ID of the mail for one delivery: the same on every retry, so
    /// a later update can name it in `In-Reply-To`.
    pub fn message_id(&self, msg: &Message, delivery_id: i64) -> String {
        let what = match msg.update_id {
            Some(u) => format!("update-{u}"),
            None => format!("delivery-{delivery_id}"),
        };
        format!("<incident-{}.{what}@{}>", msg.incident_id, self.domain)
    }

    fn render(&self, msg: &Message, ctx: &DeliveryContext) -> Result<Rendered, SendError> {
        let status_label = match msg.status {
            crate::domain::IncidentStatus::Investigating => "Investigating",
            crate::domain::IncidentStatus::Identified => "Identified",
            crate::domain::IncidentStatus::Monitoring => "Monitoring",
            crate::domain::IncidentStatus::Resolved => "Resolved",
            crate::domain::IncidentStatus::Scheduled => "Scheduled maintenance",
            crate::domain::IncidentStatus::InProgress => "Maintenance in progress",
            crate::domain::IncidentStatus::Verifying => "Maintenance verifying",
            crate::domain::IncidentStatus::Completed => "Maintenance completed",
            crate::domain::IncidentStatus::Cancelled => "Maintenance cancelled",
        };
        let names: Vec<&str> = msg.components.iter().map(|c| c.name.as_str()).collect();
        let context = Value::from_serialize(json!({
            "msg": msg,
            "site_name": self.site_name,
            "status_label": status_label,
            "components": names,
            "unsubscribe_url": UNSUBSCRIBE_PLACEHOLDER,
        }));
        let render = |name: &str| {
            self.renderer
                .render(name, context.clone())
                .map_err(|e| SendError::permanent(format!("template: {e}")))
        };
        let message_id = self.message_id(msg, ctx.delivery_id);
        Ok(Rendered {
            subject: render("email/update/subject.txt.j2")?
                .lines()
                .next()
                .unwrap_or("")
                .to_string(),
            text: render("email/update/body.txt.j2")? + "\n",
            html: render("email/update/body.html.j2")? + "\n",
            thread_root: ctx.thread_root.clone().filter(|r| *r != message_id),
            message_id,
        })
    }
}

/// What one fan-out's senders share.
struct Fanout {
    composer: Composer,
    target: Arc<SmtpTarget>,
    limiter: Option<Arc<DefaultDirectRateLimiter>>,
    /// Set when the fan-out stops early (the server keeps failing, the database broke):
    /// senders then leave the rest unsent and unrecorded, for the retry.
    stop: AtomicBool,
}

/// A recipient's mail a sender holds: built, or with its transaction already open (the server
/// answered DATA with 354).
enum Held {
    Built(i64, Outgoing),
    Open(i64, Outgoing),
}

/// One of a fan-out's `connections` senders: takes recipients from the shared queue and mails
/// each over its own session, kept open from one mail to the next (reconnecting after an
/// error), and reports every outcome. When the session pipelines, each mail's message goes out
/// in one write with the next recipient's envelope.
async fn sender(
    fan: Arc<Fanout>,
    queue: flume::Receiver<Recipient>,
    out: tokio::sync::mpsc::Sender<(i64, Outcome)>,
) {
    let from = fan.composer.sender().clone();
    let mut session: Option<Session> = None;
    let mut held: Option<Held> = None;
    let report = |id: i64, to: &lettre::Address, fail: Fail| {
        let to = Some(to.as_ref());
        let outcome = match fail {
            Fail::Refused(why) => Outcome::Refused(scrub(&why, to)),
            Fail::Later(why) | Fail::Broken(why) => Outcome::Transient(scrub(&why, to)),
        };
        (id, outcome)
    };
    loop {
        let (id, mail) = match held.take() {
            Some(Held::Open(id, mail)) => (id, mail),
            Some(Held::Built(id, mail)) => {
                if fan.stop.load(Ordering::Relaxed) {
                    continue; // left unrecorded: the retry sends it
                }
                if let Some(l) = &fan.limiter {
                    l.until_ready().await;
                }
                if session.is_none() {
                    match fan.target.open().await {
                        Ok(s) => session = Some(s),
                        Err(why) => {
                            if out
                                .send(report(id, &mail.to, Fail::Broken(why)))
                                .await
                                .is_err()
                            {
                                break;
                            }
                            continue;
                        }
                    }
                }
                let Some(s) = session.as_mut() else { continue };
                let begun = s.begin(&from, &mail).await;
                if s.is_broken() {
                    if let Some(s) = session.take() {
                        s.abort().await;
                    }
                }
                match begun {
                    Ok(()) => (id, mail),
                    Err(fail) => {
                        if out.send(report(id, &mail.to, fail)).await.is_err() {
                            break;
                        }
                        continue;
                    }
                }
            }
            None => {
                let Ok(r) = queue.recv_async().await else {
                    break;
                };
                if fan.stop.load(Ordering::Relaxed) {
                    continue;
                }
                match fan.composer.mail_for(&r) {
                    Ok(mail) => held = Some(Held::Built(r.id, mail)),
                    Err(why) => {
                        if out.send((r.id, Outcome::Refused(why))).await.is_err() {
                            break;
                        }
                    }
                }
                continue;
            }
        };
        // `mail`'s transaction is open. With pipelining (and no rate to keep), the next
        // recipient already queued is opened in the same write.
        let Some(s) = session.as_mut() else { continue };
        let mut next = None;
        if s.pipelines() && fan.limiter.is_none() && !fan.stop.load(Ordering::Relaxed) {
            while let Ok(r) = queue.try_recv() {
                match fan.composer.mail_for(&r) {
                    Ok(m) => {
                        next = Some((r.id, m));
                        break;
                    }
                    Err(why) => {
                        if out.send((r.id, Outcome::Refused(why))).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
        let (done, next_envelope) = s.finish(&from, &mail, next.as_ref().map(|(_, m)| m)).await;
        // Recorded before the next envelope's replies are awaited: a server stalling on those
        // must not hold back the record of a message it accepted.
        let done = match done {
            Ok(()) => (id, Outcome::Accepted),
            Err(fail) => report(id, &mail.to, fail),
        };
        if out.send(done).await.is_err() {
            return;
        }
        match (next, next_envelope) {
            (Some((nid, nmail)), NextEnvelope::Sent) => match s.next_opened().await {
                Ok(()) => held = Some(Held::Open(nid, nmail)),
                Err(fail) => {
                    if out.send(report(nid, &nmail.to, fail)).await.is_err() {
                        return;
                    }
                }
            },
            (Some((nid, nmail)), NextEnvelope::Refused(fail)) => {
                if out.send(report(nid, &nmail.to, fail)).await.is_err() {
                    return;
                }
            }
            (Some((nid, nmail)), NextEnvelope::NotSent) => held = Some(Held::Built(nid, nmail)),
            (None, _) => {}
        }
        if s.is_broken() {
            if let Some(s) = session.take() {
                s.abort().await;
            }
            // Whatever was opened on it is gone with it: begin again on a new session.
            if let Some(Held::Open(nid, nmail)) = held.take() {
                held = Some(Held::Built(nid, nmail));
            }
        }
    }
    if let Some(s) = session {
        s.quit().await;
    }
}

/// What happened to one recipient's mail.
enum Outcome {
    Accepted,
    /// Refused for good (5xx, or the mail could not be built): recorded, not retried.
    Refused(String),
    /// Worth retrying later (4xx, network): left unrecorded.
    Transient(String),
}

/// Headers the DKIM signature covers: lettre's default set leaves out the threading and
/// unsubscribe headers, whose forgery would matter most here.
pub const DKIM_HEADERS: &[&str] = &[
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
];

/// Removes a secret or a full address from an error text before it is logged or stored.
fn scrub(text: &str, sensitive: Option<&str>) -> String {
    match sensitive {
        Some(s) if !s.is_empty() => text.replace(s, &mask(s)),
        _ => text.to_string(),
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("u={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

#[async_trait]
impl Channel for EmailChannel {
    fn id(&self) -> &str {
        &self.id
    }

    fn preview(&self, msg: &Message) -> Option<super::Preview> {
        let ctx = DeliveryContext {
            delivery_id: 0,
            attempt: 1,
            idempotency_key: String::new(),
            thread_root: None,
            thread_parent: None,
            now: msg.posted_at,
        };
        let r = self.render(msg, &ctx).ok()?;
        let text = format!("Subject: {}\n\n{}", r.subject, r.text);
        Some(super::Preview {
            kind: "email",
            length: text.chars().count(),
            text,
            limit: None,
        })
    }

    async fn confirm(&self, c: &Confirmation, ctx: &DeliveryContext) -> Result<Sent, SendError> {
        self.send_confirmation(c, ctx).await
    }

    async fn deliver(&self, msg: &Message, ctx: &DeliveryContext) -> Result<Sent, SendError> {
        if msg.audience != Audience::Public {
            return Err(SendError::permanent(
                "the email channel mails subscribers public updates only",
            ));
        }
        let rendered = self.render(msg, ctx)?;
        let message_id = rendered.message_id.clone();
        let components: Vec<&str> = msg.components.iter().map(|c| c.id.as_str()).collect();
        let db_err = |e: crate::store::StoreError| SendError::retryable(format!("database: {e}"));
        let fan = Arc::new(Fanout {
            composer: Composer::new(
                rendered,
                self.from.clone(),
                SystemTime::from(ctx.now),
                &self.public_url,
                self.key.clone(),
                self.dkim.clone(),
            ),
            target: self.smtp.clone(),
            limiter: self.limiter.clone(),
            stop: AtomicBool::new(false),
        });
        let stop = &fan.stop;
        let (work_tx, work_rx) = flume::bounded::<Recipient>(self.page_size as usize);
        let (out_tx, mut out_rx) = tokio::sync::mpsc::channel::<(i64, Outcome)>(4096);
        // The senders run as tasks of their own, so a fan-out uses every core; dropping this
        // set (the delivery was cancelled) aborts them.
        let mut senders = tokio::task::JoinSet::new();
        for _ in 0..self.connections {
            senders.spawn(sender(fan.clone(), work_rx.clone(), out_tx.clone()));
        }
        drop((work_rx, out_tx));
        // Reads subscribers a page at a time and queues those who want this message.
        let reader = async {
            let mut after = 0i64;
            while !stop.load(Ordering::Relaxed) {
                let page = {
                    let mut conn = self
                        .db
                        .pool()
                        .acquire()
                        .await
                        .map_err(|e| db_err(e.into()))?;
                    subscribers::recipients_page(&mut conn, ctx.delivery_id, after, self.page_size)
                        .await
                        .map_err(db_err)?
                };
                let Some(last) = page.last() else { break };
                after = last.id;
                for r in page {
                    if subscribers::wants(&r.components, &components)
                        && work_tx.send_async(r).await.is_err()
                    {
                        return Ok(()); // no sender left
                    }
                }
            }
            drop(work_tx);
            Ok::<(), SendError>(())
        };
        let senders = async {
            let mut crashed = None;
            while let Some(done) = senders.join_next().await {
                if let Err(e) = done {
                    stop.store(true, Ordering::Relaxed);
                    crashed = Some(e.to_string());
                }
            }
            crashed
        };
        // Records outcomes in batches as they come, while sending goes on.
        let recorder = async {
            let mut sent = 0u64;
            let mut transient: Option<String> = None;
            let mut failing_in_a_row = 0usize;
            let mut batch = Vec::new();
            while let Some(first) = out_rx.recv().await {
                let mut next = Some(first);
                while let Some((id, outcome)) = next.take() {
                    match outcome {
                        Outcome::Accepted => {
                            sent += 1;
                            failing_in_a_row = 0;
                            batch.push(SendRecord {
                                subscriber_id: id,
                                error: None,
                            });
                        }
                        Outcome::Refused(why) => {
                            failing_in_a_row = 0;
                            batch.push(SendRecord {
                                subscriber_id: id,
                                error: Some(why),
                            });
                        }
                        Outcome::Transient(why) => {
                            failing_in_a_row += 1;
                            transient = Some(why);
                            // A server that refuses everyone for a while is down: stop and
                            // retry later rather than walking every subscriber.
                            if failing_in_a_row >= self.connections * 4 {
                                stop.store(true, Ordering::Relaxed);
                            }
                        }
                    }
                    if batch.len() < 1000 {
                        next = out_rx.try_recv().ok();
                    }
                }
                if !batch.is_empty() {
                    let written = async {
                        let mut conn = self.db.write_conn().await?;
                        subscribers::record_sends(
                            &mut conn,
                            self.db.backend(),
                            ctx.delivery_id,
                            &batch,
                            ctx.now,
                        )
                        .await
                    }
                    .await;
                    if let Err(e) = written {
                        stop.store(true, Ordering::Relaxed);
                        // Keep draining so the senders finish; the retry resends the unrecorded.
                        while out_rx.recv().await.is_some() {}
                        return Err(db_err(e));
                    }
                    batch.clear();
                }
            }
            Ok::<_, SendError>((sent, transient))
        };
        let (read, crashed, recorded) = tokio::join!(reader, senders, recorder);
        read?;
        let (sent, transient) = recorded?;
        if let Some(why) = crashed {
            tracing::error!(channel = %self.id, error = %why, "an email sender stopped unexpectedly");
            return Err(SendError::retryable(
                "an email sender stopped unexpectedly; the rest will be retried",
            ));
        }
        tracing::info!(channel = %self.id, recipients = sent, "email fan-out pass finished");
        if let Some(why) = transient {
            return Err(SendError::retryable(format!(
                "some recipients could not be reached yet ({why}); they will be retried"
            )));
        }
        Ok(Sent {
            remote_id: Some(message_id),
            remote_url: None,
        })
    }
}
