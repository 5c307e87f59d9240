//! The `email` channel: one delivery fans out to every confirmed subscriber who chose the
//! incident's components (or everything), over a pool of SMTP connections (lettre, rustls).
//!
//! Subscribers are read in pages by id (keyset pagination), so memory does not grow with their
//! number. `connections` senders each keep one SMTP connection open for the whole fan-out (a
//! pool held for its length, as `smtp-source -d` does), with TCP_NODELAY; single mails
//! (confirmations) go through lettre's pooled `AsyncSmtpTransport`. Every recipient's outcome is recorded against the delivery (one row per delivery and
//! subscriber), so a retry or a restart resumes where the last attempt stopped: nobody gets the
//! same update twice and nobody is skipped. The window left open is the messages the server had
//! accepted in the last moments before a hard kill, whose rows were still being written.
//!
//! Each mail is multipart text and HTML from `templates/email/update/`, carries a one-click
//! `List-Unsubscribe` (RFC 8058), and threading headers: every update of an incident replies to
//! the first mail sent about it (the delivery's `remote_id` is the Message-ID).

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use minijinja::Value;
use serde_json::json;

use super::{Channel, DeliveryContext, Message, SendError, Sent};
use crate::config::EmailConfig;
use crate::domain::subscriber::{mask, SubscriberEmail};
use crate::domain::Audience;
use crate::render::Renderer;
use crate::store::subscribers::{self, Recipient, SendRecord, UnsubscribeKey};
use crate::store::Db;

/// Stands for each recipient's own unsubscribe URL in a mail rendered once per delivery.
const UNSUBSCRIBE_PLACEHOLDER: &str = "https://candor.invalid/unsubscribe/PLACEHOLDER";

pub struct EmailChannel {
    id: String,
    db: Db,
    renderer: Arc<Renderer>,
    /// For single mails (confirmations): lettre's pooled transport.
    transport: AsyncSmtpTransport<Tokio1Executor>,
    /// For fan-outs: where and how each of the fan-out's own connections connects.
    smtp: SmtpTarget,
    from: Mailbox,
    /// The sender's domain: the right-hand side of Message-IDs.
    domain: String,
    site_name: String,
    public_url: String,
    key: UnsubscribeKey,
    connections: usize,
    page_size: i64,
    limiter: Option<DefaultDirectRateLimiter>,
    dkim: Option<lettre::message::dkim::DkimConfig>,
    confirm_within: Duration,
    /// Public subscription requests, from everyone together.
    pub subscribe_limiter: DefaultDirectRateLimiter,
}

/// The parts of one update mail, rendered once per delivery.
struct Rendered {
    subject: String,
    text: String,
    html: String,
    message_id: String,
    thread_root: Option<String>,
}

impl EmailChannel {
    pub fn new(
        id: &str,
        cfg: &EmailConfig,
        site_name: &str,
        public_url: &url::Url,
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
                Some(DkimConfig::new(
                    d.selector.clone(),
                    d.domain.clone(),
                    key,
                    headers,
                    DkimCanonicalization {
                        header: DkimCanonicalizationType::Relaxed,
                        body: DkimCanonicalizationType::Relaxed,
                    },
                ))
            }
        };
        let limiter = cfg
            .per_second
            .and_then(NonZeroU32::new)
            .map(|n| RateLimiter::direct(Quota::per_second(n)));
        let per_minute = NonZeroU32::new(cfg.subscribe_per_minute).unwrap_or(NonZeroU32::MIN);
        let smtp = SmtpTarget::from_url(&url, cfg)?;
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

    fn unsubscribe_url(&self, r: &Recipient) -> String {
        format!(
            "{}/unsubscribe/{}",
            self.public_url,
            self.key.token(r.id, &r.unsubscribe_salt)
        )
    }

    /// Builds one recipient's copy of an update mail.
    fn update_mail(
        &self,
        m: &Rendered,
        to: &SubscriberEmail,
        unsubscribe_url: &str,
        date: SystemTime,
    ) -> Result<lettre::Message, String> {
        let mut b = lettre::Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(None, to.address().clone()))
            .subject(m.subject.clone())
            .date(date)
            .message_id(Some(m.message_id.clone()));
        if let Some(root) = &m.thread_root {
            b = b.in_reply_to(root.clone()).references(root.clone());
        }
        b = b
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe"),
                format!("<{unsubscribe_url}>"),
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                "List-Unsubscribe=One-Click".to_string(),
            ));
        let mut mail = b
            .multipart(MultiPart::alternative_plain_html(
                m.text.replace(UNSUBSCRIBE_PLACEHOLDER, unsubscribe_url),
                m.html.replace(
                    &html_escaped(UNSUBSCRIBE_PLACEHOLDER),
                    &html_escaped(unsubscribe_url),
                ),
            ))
            .map_err(|e| format!("cannot build the mail: {e}"))?;
        if let Some(dkim) = &self.dkim {
            mail.sign(dkim);
        }
        Ok(mail)
    }

    /// Sends the double opt-in mail: the only mail an unconfirmed address ever gets.
    pub async fn send_confirmation(
        &self,
        to: &SubscriberEmail,
        token: &str,
        components: Option<&[String]>,
        config: &crate::config::Config,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), String> {
        let names: Vec<String> = components
            .unwrap_or(&[])
            .iter()
            .filter_map(|id| config.component(id).map(|c| c.name.clone()))
            .collect();
        let context = Value::from_serialize(json!({
            "site_name": self.site_name,
            "confirm_url": format!("{}/subscribe/confirm/{token}", self.public_url),
            "components": names,
            "valid_for": humantime::format_duration(self.confirm_within).to_string(),
        }));
        let render = |name: &str| {
            self.renderer
                .render(name, context.clone())
                .map_err(|e| format!("template: {e}"))
        };
        let mut mail = lettre::Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(None, to.address().clone()))
            .subject(render("email/confirm/subject.txt.j2")?)
            .date(SystemTime::from(now))
            .multipart(MultiPart::alternative_plain_html(
                render("email/confirm/body.txt.j2")? + "\n",
                render("email/confirm/body.html.j2")? + "\n",
            ))
            .map_err(|e| format!("cannot build the mail: {e}"))?;
        if let Some(dkim) = &self.dkim {
            mail.sign(dkim);
        }
        self.transport
            .send(mail)
            .await
            .map(|_| ())
            .map_err(|e| scrub(&e.to_string(), Some(to.as_str())))
    }

    /// Builds one recipient's mail: `Err` when it cannot be built (recorded as failed).
    fn mail_for(
        &self,
        m: &Rendered,
        r: &Recipient,
        date: SystemTime,
    ) -> Result<lettre::Message, String> {
        let to = SubscriberEmail::parse(&r.email)
            .map_err(|e| format!("stored address is not valid: {e}"))?;
        self.update_mail(m, &to, &self.unsubscribe_url(r), date)
    }

    /// One of the fan-out's `connections` senders: takes recipients from the shared queue and
    /// sends each over its own connection, kept open from one mail to the next (reconnecting
    /// after an error), and reports every outcome.
    async fn sender(
        &self,
        m: &Rendered,
        queue: &tokio::sync::Mutex<tokio::sync::mpsc::Receiver<Recipient>>,
        out: tokio::sync::mpsc::Sender<(i64, Outcome)>,
        stop: &AtomicBool,
        date: SystemTime,
    ) {
        let mut conn: Option<AsyncSmtpConnection> = None;
        loop {
            let next = queue.lock().await.recv().await;
            let Some(r) = next else { break };
            if stop.load(Ordering::Relaxed) {
                continue; // left unrecorded: the retry sends it
            }
            let outcome = match self.mail_for(m, &r, date) {
                Err(why) => Outcome::Refused(why),
                Ok(mail) => {
                    if let Some(l) = &self.limiter {
                        l.until_ready().await;
                    }
                    self.send_on(&mut conn, &mail, &r.email).await
                }
            };
            if out.send((r.id, outcome)).await.is_err() {
                break;
            }
        }
        if let Some(mut c) = conn {
            let _ = c.quit().await;
        }
    }

    /// Sends one mail on `conn`, connecting first if there is no usable connection.
    async fn send_on(
        &self,
        conn: &mut Option<AsyncSmtpConnection>,
        mail: &lettre::Message,
        address: &str,
    ) -> Outcome {
        if conn.as_ref().is_none_or(|c| c.has_broken()) {
            match tokio::time::timeout(self.smtp.timeout, self.smtp.connect()).await {
                Ok(Ok(c)) => *conn = Some(c),
                Ok(Err(e)) => return Outcome::Transient(e),
                Err(_) => return Outcome::Transient("connecting timed out".into()),
            }
        }
        let Some(c) = conn.as_mut() else {
            return Outcome::Transient("no connection".into());
        };
        let sent = tokio::time::timeout(
            self.smtp.timeout,
            c.send(mail.envelope(), &mail.formatted()),
        )
        .await;
        let outcome = match sent {
            Ok(Ok(_)) => Outcome::Accepted,
            Ok(Err(e)) if e.is_permanent() => {
                Outcome::Refused(scrub(&e.to_string(), Some(address)))
            }
            Ok(Err(e)) => Outcome::Transient(scrub(&e.to_string(), Some(address))),
            Err(_) => Outcome::Transient("the server did not answer in time".into()),
        };
        if !matches!(outcome, Outcome::Accepted) && conn.as_ref().is_some_and(|c| !c.has_broken()) {
            // A timed-out or refused transaction leaves the session in an unknown state.
            if let Some(mut c) = conn.take() {
                c.abort().await;
            }
        }
        outcome
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TlsMode {
    None,
    StartTls { required: bool },
    Implicit,
}

/// Where a fan-out's connections go, read from `smtp_url` as lettre's `from_url` reads it
/// (`smtp://` port 25 without TLS, `?tls=required|opportunistic` STARTTLS on 587 by default,
/// `smtps://` TLS on 465 by default).
struct SmtpTarget {
    host: String,
    port: u16,
    tls: TlsMode,
    credentials: Option<Credentials>,
    hello: ClientId,
    timeout: Duration,
}

impl SmtpTarget {
    fn from_url(url: &url::Url, cfg: &EmailConfig) -> anyhow::Result<Self> {
        let host = url.host_str().unwrap_or_default().to_string();
        let tls_param = url
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.into_owned());
        let (tls, default_port) = match (url.scheme(), tls_param.as_deref()) {
            ("smtps", _) => (TlsMode::Implicit, 465),
            (_, Some("required")) => (TlsMode::StartTls { required: true }, 587),
            (_, Some("opportunistic")) => (TlsMode::StartTls { required: false }, 587),
            _ => (TlsMode::None, 25),
        };
        let credentials = cfg
            .password
            .as_ref()
            .map(|p| Credentials::new(percent_decode(url.username()), p.expose().to_string()));
        let path = url.path().trim_matches('/');
        let hello = if path.is_empty() {
            ClientId::default()
        } else {
            ClientId::Domain(path.to_string())
        };
        Ok(Self {
            host,
            port: url.port().unwrap_or(default_port),
            tls,
            credentials,
            hello,
            timeout: cfg.limits.timeout,
        })
    }

    fn tls_parameters(&self) -> Result<TlsParameters, String> {
        TlsParameters::new(self.host.clone()).map_err(|e| format!("TLS setup: {e}"))
    }

    /// Opens one connection. Without implicit TLS the socket gets TCP_NODELAY: lettre writes a
    /// message and its closing `.` separately, and with Nagle's algorithm on, the `.` waits for
    /// the server's delayed ACK (40 ms on Linux) on every mail.
    async fn connect(&self) -> Result<AsyncSmtpConnection, String> {
        let mut conn = if self.tls == TlsMode::Implicit {
            AsyncSmtpConnection::connect_tokio1(
                (self.host.as_str(), self.port),
                Some(self.timeout),
                &self.hello,
                Some(self.tls_parameters()?),
                None,
            )
            .await
            .map_err(|e| format!("cannot connect: {e}"))?
        } else {
            let stream = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(|e| format!("cannot connect: {e}"))?;
            stream
                .set_nodelay(true)
                .map_err(|e| format!("cannot connect: {e}"))?;
            AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello)
                .await
                .map_err(|e| format!("cannot connect: {e}"))?
        };
        if let TlsMode::StartTls { required } = self.tls {
            if conn.can_starttls() {
                conn.starttls(self.tls_parameters()?, &self.hello)
                    .await
                    .map_err(|e| format!("STARTTLS failed: {e}"))?;
            } else if required {
                conn.abort().await;
                return Err("the server does not offer STARTTLS (tls=required)".into());
            }
        }
        if let Some(creds) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], creds)
                .await
                .map_err(|e| format!("authentication failed: {e}"))?;
        }
        Ok(conn)
    }
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

/// A URL as minijinja's HTML escaping writes it (the placeholder and the unsubscribe URLs hold
/// nothing else it escapes: letters, digits, `:`, `.`, `-`, `_` and `/`).
fn html_escaped(url: &str) -> String {
    url.replace('/', "&#x2f;")
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

    async fn deliver(&self, msg: &Message, ctx: &DeliveryContext) -> Result<Sent, SendError> {
        if msg.audience != Audience::Public {
            return Err(SendError::permanent(
                "the email channel mails subscribers public updates only",
            ));
        }
        let rendered = self.render(msg, ctx)?;
        let components: Vec<&str> = msg.components.iter().map(|c| c.id.as_str()).collect();
        let date = SystemTime::from(ctx.now);
        let db_err = |e: crate::store::StoreError| SendError::retryable(format!("database: {e}"));
        let stop = AtomicBool::new(false);
        let (work_tx, work_rx) = tokio::sync::mpsc::channel::<Recipient>(self.page_size as usize);
        let queue = tokio::sync::Mutex::new(work_rx);
        let (out_tx, mut out_rx) = tokio::sync::mpsc::channel::<(i64, Outcome)>(4096);
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
                        && work_tx.send(r).await.is_err()
                    {
                        break;
                    }
                }
            }
            drop(work_tx);
            Ok::<(), SendError>(())
        };
        let senders = {
            let out_tx = out_tx;
            futures::future::join_all(
                (0..self.connections)
                    .map(|_| self.sender(&rendered, &queue, out_tx.clone(), &stop, date)),
            )
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
                        subscribers::record_sends(&mut conn, ctx.delivery_id, &batch, ctx.now).await
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
        let (read, _, recorded) = tokio::join!(reader, senders, recorder);
        read?;
        let (sent, transient) = recorded?;
        let message_id = rendered.message_id;
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
