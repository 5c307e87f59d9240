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
//! Each mail is multipart text and HTML from `templates/email/update/`, carries `List-Id`
//! (RFC 2919), a one-click `List-Unsubscribe` (RFC 8058) and `Auto-Submitted` (RFC 3834)
//! (`headers.rs`), and threading headers: all mails of an incident share one subject (the
//! status is the body's first line), and each recipient's copy replies to the first mail about
//! the incident that reached them (the delivery's `remote_id` is the Message-ID). Every
//! Message-ID carries a part of this installation's own (`headers::Ids`).
//!
//! The fan-out itself is in `fanout.rs`, the double opt-in mail in `confirm.rs`.

mod compose;
mod confirm;
mod fanout;
mod headers;
mod smtp;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use lettre::message::header::HeaderName;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, Tokio1Executor};
use minijinja::Value;
use serde_json::json;

use super::{Channel, Confirmation, DeliveryContext, Message, SendError, Sent};
use crate::config::{ComponentConfig, EmailConfig};
use crate::domain::subscriber::mask;
use crate::render::Renderer;
use crate::store::subscribers::UnsubscribeKey;
use crate::store::Db;
use compose::{Rendered, UNSUBSCRIBE_PLACEHOLDER};
use headers::Ids;
pub use headers::DKIM_HEADERS;
use smtp::SmtpTarget;

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
    /// How Message-IDs name this installation: read from the database on first use.
    ids: tokio::sync::OnceCell<Ids>,
    /// `List-Id` of every mail.
    list_id: String,
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

/// A database error while sending: retried later, like a network error.
fn db_err(e: crate::store::StoreError) -> SendError {
    SendError::retryable(format!("database: {e}"))
}

impl EmailChannel {
    /// A connection from the pool; failing to get one is a retryable send error.
    async fn conn(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Any>, SendError> {
        self.db.pool().acquire().await.map_err(|e| db_err(e.into()))
    }

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
            list_id: headers::list_id(site_name, public_url, &domain),
            from,
            domain,
            ids: tokio::sync::OnceCell::new(),
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

    /// How this installation names its mails (its random value is read from the database, or
    /// drawn and stored there, on first use).
    async fn ids(&self) -> Result<&Ids, SendError> {
        self.ids
            .get_or_try_init(|| async {
                let mut conn = self.db.write_conn().await?;
                let secret = crate::store::installation::secret(&mut conn).await?;
                Ok::<_, crate::store::StoreError>(Ids::new(&secret, &self.public_url, &self.domain))
            })
            .await
            .map_err(|e| SendError::retryable(format!("database: {e}")))
    }

    /// The update's subject and bodies (its Message-ID and thread are the fan-out's to fill).
    fn render(&self, msg: &Message) -> Result<Rendered, SendError> {
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
        Ok(Rendered {
            subject: render("email/update/subject.txt.j2")?
                .lines()
                .next()
                .unwrap_or("")
                .to_string(),
            text: render("email/update/body.txt.j2")? + "\n",
            html: render("email/update/body.html.j2")? + "\n",
            message_id: String::new(),
            list_id: self.list_id.clone(),
            thread: Default::default(),
        })
    }
}

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
        let r = self.render(msg).ok()?;
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
        self.fan_out(msg, ctx).await
    }
}
