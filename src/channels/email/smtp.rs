//! The fan-out's SMTP sessions: lettre's `AsyncSmtpConnection` for connecting, TLS, AUTH and
//! reading replies, with the transactions themselves written by Candor so they can be
//! pipelined (RFC 2920) when the server offers PIPELINING.
//!
//! Without pipelining a mail costs four round trips (MAIL, RCPT, DATA, the message), which is
//! what lettre's `send` does. With it, a session writes MAIL, RCPT and DATA together, and then
//! the message *together with the next mail's* MAIL, RCPT and DATA (the RFC allows the message
//! to open a group and DATA to close one), so a mail costs one round trip, as Postfix's own
//! client does it. The replies come back in order and are matched to the commands one by one:
//! a refusal of one recipient (a 5xx to RCPT, or to the message) ends that transaction only,
//! and the session goes on.

use std::fmt;
use std::time::Duration;

use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::commands::{Data, Ehlo, Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};
use lettre::Address;

use crate::config::EmailConfig;

/// One recipient's mail, ready for the wire.
pub(super) struct Outgoing {
    /// `RCPT TO`.
    pub to: Address,
    /// The message as sent after DATA: dot-stuffed, ending with `CRLF . CRLF`.
    pub data: String,
}

impl Outgoing {
    /// Whether the envelope needs SMTPUTF8 (an address that is not ASCII).
    fn needs_smtputf8(&self, from: &Address) -> bool {
        let ascii = |a: &Address| AsRef::<str>::as_ref(a).is_ascii();
        !ascii(&self.to) || !ascii(from)
    }
}

/// What [`Session::finish`] did with the next mail's envelope.
pub(super) enum NextEnvelope {
    /// Not sent (no pipelining, or the session broke): begin it separately.
    NotSent,
    /// Sent after the message: read its replies with [`Session::next_opened`].
    Sent,
    /// It cannot be mailed on this server (say SMTPUTF8 is missing).
    Refused(Fail),
}

/// Why one recipient's mail did not go.
#[derive(Debug)]
pub(super) enum Fail {
    /// The server refused it for good (5xx): record it, do not retry.
    Refused(String),
    /// The server refused it for now (4xx): retry later. The session is still usable.
    Later(String),
    /// The session is unusable (network, timeout, a reply out of step): retry later, on a new one.
    Broken(String),
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
pub(super) struct SmtpTarget {
    host: String,
    port: u16,
    tls: TlsMode,
    credentials: Option<Credentials>,
    hello: ClientId,
    pub timeout: Duration,
    /// `pipelining: false` in config: never pipeline, even when the server offers it.
    pipelining: bool,
}

impl SmtpTarget {
    pub fn from_url(url: &url::Url, cfg: &EmailConfig) -> anyhow::Result<Self> {
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
        let credentials = cfg.password.as_ref().map(|p| {
            Credentials::new(
                super::percent_decode(url.username()),
                p.expose().to_string(),
            )
        });
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
            pipelining: cfg.pipelining,
        })
    }

    fn tls_parameters(&self) -> Result<TlsParameters, String> {
        TlsParameters::new(self.host.clone()).map_err(|e| format!("TLS setup: {e}"))
    }

    /// Opens one session, within the configured timeout.
    pub async fn open(&self) -> Result<Session, String> {
        tokio::time::timeout(self.timeout, self.connect())
            .await
            .unwrap_or_else(|_| Err("connecting timed out".into()))
    }

    /// Connects, says EHLO, upgrades with STARTTLS as configured, learns whether the server
    /// pipelines, and authenticates. Without implicit TLS the socket gets TCP_NODELAY: a
    /// message's last segment must not wait for the server's delayed ACK (40 ms on Linux).
    async fn connect(&self) -> Result<Session, String> {
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
        // lettre keeps only the extensions it uses itself, so ask again (before AUTH: a new
        // EHLO may reset an authenticated state) and look for PIPELINING.
        let pipelining = self.pipelining && {
            let ehlo = conn
                .command(Ehlo::new(self.hello.clone()))
                .await
                .map_err(|e| format!("EHLO failed: {e}"))?;
            let offered = ehlo.message().any(|line| {
                line.split_whitespace()
                    .next()
                    .is_some_and(|w| w.eq_ignore_ascii_case("PIPELINING"))
            });
            offered
        };
        if let Some(creds) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], creds)
                .await
                .map_err(|e| format!("authentication failed: {e}"))?;
        }
        Ok(Session {
            conn,
            pipelining,
            timeout: self.timeout,
            broken: false,
        })
    }
}

/// Bytes written to the server as they are (commands or a dot-stuffed message), through
/// lettre's `command`, which writes a `Display` and reads one reply.
struct Raw<'a>(&'a str);

impl fmt::Display for Raw<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// One SMTP session of a fan-out.
pub(super) struct Session {
    conn: AsyncSmtpConnection,
    pipelining: bool,
    timeout: Duration,
    /// Set when an exchange broke (network, timeout, replies out of step) or a RSET failed.
    broken: bool,
}

impl Session {
    pub fn pipelines(&self) -> bool {
        self.pipelining
    }

    /// MAIL, RCPT and DATA for `mail`, as text.
    fn envelope(&self, from: &Address, mail: &Outgoing) -> Result<String, Fail> {
        let offers = |ext: Extension, why: &str| {
            if self.conn.server_info().supports_feature(ext) {
                Ok(())
            } else {
                Err(Fail::Refused(why.into()))
            }
        };
        let mut params = Vec::new();
        if mail.needs_smtputf8(from) {
            offers(
                Extension::SmtpUtfEight,
                "the address is not ASCII and the server does not offer SMTPUTF8",
            )?;
            params.push(MailParameter::SmtpUtfEight);
        }
        if !mail.data.is_ascii() {
            offers(
                Extension::EightBitMime,
                "the message is not ASCII and the server does not offer 8BITMIME",
            )?;
            params.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        Ok(format!(
            "{}{}{}",
            Mail::new(Some(from.clone()), params),
            Rcpt::new(mail.to.clone(), vec![]),
            Data
        ))
    }

    /// Opens `mail`'s transaction: Ok once the server waits for the message (354).
    pub async fn begin(&mut self, from: &Address, mail: &Outgoing) -> Result<(), Fail> {
        let envelope = self.envelope(from, mail)?;
        let timeout = self.timeout;
        let replies = tokio::time::timeout(timeout, async {
            if self.pipelining {
                let first = classify(self.conn.command(Raw(&envelope)).await)?;
                let mut replies = vec![first];
                replies.extend(self.replies(2).await?);
                Ok(replies)
            } else {
                // One command at a time, stopping at the first refusal.
                let mut replies = Vec::with_capacity(3);
                for line in envelope.split_inclusive("\r\n") {
                    let reply = classify(self.conn.command(Raw(line)).await)?;
                    let refused = reply.is_err();
                    replies.push(reply);
                    if refused {
                        break;
                    }
                }
                Ok(replies)
            }
        })
        .await
        .unwrap_or_else(|_| Err(timed_out()));
        self.opened(replies).await
    }

    /// Sends the message of the open transaction (`mail`) and reads the server's reply to it.
    /// When the session pipelines and `next` is given, `next`'s MAIL, RCPT and DATA go out in
    /// the same write: `true` says so, and [`Session::next_opened`] then reads their replies.
    /// The message's reply is returned first so it can be recorded at once.
    pub async fn finish(
        &mut self,
        from: &Address,
        mail: &Outgoing,
        next: Option<&Outgoing>,
    ) -> (Result<(), Fail>, NextEnvelope) {
        let next_envelope = match next.filter(|_| self.pipelining) {
            None => None,
            Some(n) => match self.envelope(from, n) {
                Ok(e) => Some(e),
                // `next` cannot be mailed here at all: say so, and send the message alone.
                Err(fail) => {
                    return (
                        self.finish_with(&mail.data).await,
                        NextEnvelope::Refused(fail),
                    )
                }
            },
        };
        match next_envelope {
            None => (self.finish_with(&mail.data).await, NextEnvelope::NotSent),
            Some(envelope) => {
                let mut group = String::with_capacity(mail.data.len() + envelope.len());
                group.push_str(&mail.data);
                group.push_str(&envelope);
                let done = self.finish_with(&group).await;
                let next = if self.broken {
                    NextEnvelope::NotSent
                } else {
                    NextEnvelope::Sent
                };
                (done, next)
            }
        }
    }

    /// Writes a message (and whatever follows it in the same group) and reads the message's
    /// reply.
    async fn finish_with(&mut self, text: &str) -> Result<(), Fail> {
        let timeout = self.timeout;
        let done = tokio::time::timeout(timeout, self.conn.command(Raw(text)))
            .await
            .map_err(|_| timed_out())
            .and_then(classify)
            .and_then(|r| r);
        if let Err(Fail::Broken(_)) = &done {
            self.broken = true;
        }
        done
    }

    /// Reads the replies to the MAIL, RCPT and DATA that [`Session::finish`] sent with the
    /// last message: Ok once the server waits for that next message.
    pub async fn next_opened(&mut self) -> Result<(), Fail> {
        let timeout = self.timeout;
        let replies = tokio::time::timeout(timeout, self.replies(3))
            .await
            .unwrap_or_else(|_| Err(timed_out()));
        self.opened(replies).await
    }

    /// Reads `n` replies; a refusal is an `Err` in the list, a broken session the `Err`.
    async fn replies(&mut self, n: usize) -> Result<Vec<Result<(), Fail>>, Fail> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(classify(self.conn.read_response().await)?);
        }
        Ok(out)
    }

    /// Whether an envelope's replies opened its transaction. After an envelope the server
    /// refused in part (say a 550 to RCPT), its MAIL may still stand, and the next MAIL would
    /// be refused as nested: RSET clears it (RFC 5321 4.1.1.5).
    async fn opened(&mut self, replies: Result<Vec<Result<(), Fail>>, Fail>) -> Result<(), Fail> {
        let opened = replies.and_then(opened);
        match &opened {
            Err(Fail::Broken(_)) => self.broken = true,
            Err(Fail::Refused(_) | Fail::Later(_)) => {
                let timeout = self.timeout;
                let reset = tokio::time::timeout(timeout, self.conn.command(Rset)).await;
                if !matches!(reset, Ok(Ok(_))) {
                    self.broken = true;
                }
            }
            Ok(()) => {}
        }
        opened
    }

    /// Whether the session cannot be used any more (it must be aborted, not reused).
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Ends the session politely.
    pub async fn quit(mut self) {
        let _ = tokio::time::timeout(self.timeout, self.conn.quit()).await;
    }

    /// Drops the session without waiting for the server.
    pub async fn abort(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(1), self.conn.abort()).await;
    }
}

fn timed_out() -> Fail {
    Fail::Broken("the server did not answer in time".into())
}

/// One reply: a refusal is `Ok(Err)` (the session goes on); anything but a reply is `Err`.
fn classify(
    reply: Result<lettre::transport::smtp::response::Response, lettre::transport::smtp::Error>,
) -> Result<Result<(), Fail>, Fail> {
    match reply {
        Ok(_) => Ok(Ok(())),
        Err(e) if e.is_permanent() => Ok(Err(Fail::Refused(e.to_string()))),
        Err(e) if e.is_transient() => Ok(Err(Fail::Later(e.to_string()))),
        Err(e) => Err(Fail::Broken(e.to_string())),
    }
}

/// The replies to MAIL, RCPT and DATA: the transaction is open when all three were accepted.
/// A DATA accepted after a refused MAIL or RCPT leaves the server waiting for a message that
/// must not be sent: the session cannot go on.
fn opened(replies: Vec<Result<(), Fail>>) -> Result<(), Fail> {
    let data_accepted = replies.last().is_some_and(|r| r.is_ok());
    match replies.into_iter().find_map(|r| r.err()) {
        None => Ok(()),
        Some(_) if data_accepted => Err(Fail::Broken(
            "the server accepted DATA after refusing the envelope".into(),
        )),
        Some(fail) => Err(fail),
    }
}

/// Dot-stuffs `message` (RFC 5321 4.5.2) into `out` and ends it with `CRLF . CRLF`.
pub(super) fn stuff_into(message: &[u8], out: &mut Vec<u8>) {
    out.reserve(message.len() + 8);
    let mut rest = message;
    loop {
        if rest.first() == Some(&b'.') {
            out.push(b'.');
        }
        match memchr::memchr(b'\n', rest) {
            Some(i) => {
                out.extend_from_slice(&rest[..=i]);
                rest = &rest[i + 1..];
            }
            None => {
                out.extend_from_slice(rest);
                break;
            }
        }
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stuffing_doubles_leading_dots_and_ends_the_message() {
        let mut out = Vec::new();
        stuff_into(b".a\r\nb.\r\n..c\r\n.", &mut out);
        assert_eq!(out, b"..a\r\nb.\r\n...c\r\n..\r\n.\r\n");
        let mut out = Vec::new();
        stuff_into(b"x\r\n", &mut out);
        assert_eq!(out, b"x\r\n.\r\n");
    }

    #[test]
    fn a_data_accepted_after_a_refused_recipient_breaks_the_session() {
        let r = opened(vec![Ok(()), Err(Fail::Refused("550".into())), Ok(())]);
        assert!(matches!(r, Err(Fail::Broken(_))));
        let r = opened(vec![
            Ok(()),
            Err(Fail::Refused("550 no such user".into())),
            Err(Fail::Refused("554 no valid recipients".into())),
        ]);
        assert!(matches!(r, Err(Fail::Refused(why)) if why.contains("550")));
        assert!(opened(vec![Ok(()), Ok(()), Ok(())]).is_ok());
    }
}
