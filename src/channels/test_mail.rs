//! `candor channel test` on the email channel. A delivery of that channel mails every
//! subscriber, so a test mails one address instead: the channel's own From address, through
//! the configured SMTP server, with the same credentials and timeout.

use std::time::SystemTime;

use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::{Message, Preview, Sent};
use crate::config::EmailConfig;

/// Sends `msg` as a plain-text mail to the From address of channel `id`. Returns the mail's
/// Message-ID, and what was sent where (as the command line prints it).
pub(super) async fn send(
    id: &str,
    cfg: &EmailConfig,
    msg: &Message,
) -> anyhow::Result<(Sent, Preview)> {
    let from: Mailbox = cfg
        .from
        .parse()
        .map_err(|_| anyhow::anyhow!("channels.{id}.from is not an address"))?;
    // lettre reads the user and password from the URL; the password comes from the config.
    let mut url = url::Url::parse(cfg.smtp_url.expose())
        .map_err(|_| anyhow::anyhow!("channels.{id}.smtp_url is not a URL"))?;
    if let Some(password) = &cfg.password {
        url.set_password(Some(password.expose()))
            .map_err(|_| anyhow::anyhow!("channels.{id}.smtp_url cannot carry a password"))?;
    }
    // Errors here could quote the URL, password included: never pass them on.
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.as_str())
        .map_err(|_| anyhow::anyhow!("channels.{id}.smtp_url is not a usable SMTP URL"))?
        .timeout(Some(cfg.limits.timeout))
        .build();
    let message_id = format!(
        "<candor-test-{id}-{}@{}>",
        msg.posted_at.timestamp_millis(),
        from.email.domain()
    );
    let text = format!("{}\n", msg.body);
    let mail = lettre::Message::builder()
        .from(from.clone())
        .to(from.clone())
        .subject(msg.title.as_str())
        .message_id(Some(message_id.clone()))
        .date(SystemTime::from(msg.posted_at))
        .body(text.clone())?;
    transport
        .send(mail)
        .await
        .map_err(|e| anyhow::anyhow!("failed: {e}"))?;
    let shown = format!(
        "To: {}\nSubject: {}\n\n{text}(only the channel's From address was mailed; subscribers were not)",
        from.email, msg.title
    );
    Ok((
        Sent {
            remote_id: Some(message_id),
            remote_url: None,
        },
        Preview {
            kind: "email",
            length: text.chars().count(),
            text: shown,
            limit: None,
        },
    ))
}
