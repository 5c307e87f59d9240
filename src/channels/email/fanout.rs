//! One update's fan-out: `connections` senders (tasks of their own) each keep one SMTP
//! session open for the whole fan-out, pipelined when the server offers it (`smtp.rs`), while
//! a reader queues the subscribers who want the update a page at a time and a recorder writes
//! every recipient's outcome in batches.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use governor::DefaultDirectRateLimiter;

use super::compose::Composer;
use super::smtp::{Fail, NextEnvelope, Outgoing, Session, SmtpTarget};
use super::{db_err, scrub, EmailChannel};
use crate::channels::{DeliveryContext, Message, SendError, Sent};
use crate::domain::Audience;
use crate::store::deliveries;
use crate::store::subscribers::{self, Recipient, SendRecord};

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

impl EmailChannel {
    /// Mails update `msg` to every confirmed subscriber who wants it and has no record for
    /// this delivery yet, recording each outcome.
    pub(super) async fn fan_out(
        &self,
        msg: &Message,
        ctx: &DeliveryContext,
    ) -> Result<Sent, SendError> {
        if msg.audience != Audience::Public {
            return Err(SendError::permanent(
                "the email channel mails subscribers public updates only",
            ));
        }
        let ids = self.ids().await?;
        let message_id = match &msg.correction {
            Some(c) => ids.correction(msg.incident_id, c.correction_id),
            None => ids.update(msg.incident_id, msg.update_id, ctx.delivery_id),
        };
        // The incident's mails so far, by delivery: each recipient's copy replies to the first
        // that reached them (as recorded when it was delivered, else as it was named).
        let thread = {
            let mut conn = self.conn().await?;
            deliveries::thread_messages(&mut conn, msg.incident_id, &self.id)
                .await
                .map_err(db_err)?
        };
        let mut rendered = self.render(msg)?;
        rendered.message_id = message_id.clone();
        rendered.thread = thread
            .into_iter()
            .map(|(id, update, remote)| {
                (
                    id,
                    remote.unwrap_or_else(|| ids.update(msg.incident_id, update, id)),
                )
            })
            .collect();
        let components: Vec<&str> = msg.components.iter().map(|c| c.id.as_str()).collect();
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
                    let mut conn = self.conn().await?;
                    subscribers::recipients_page(
                        &mut conn,
                        ctx.delivery_id,
                        (msg.incident_id, &self.id),
                        msg.correction.as_ref().map(|c| c.update_id),
                        after,
                        self.page_size,
                    )
                    .await
                    .map_err(db_err)?
                };
                let Some(last) = page.last() else { break };
                after = last.id;
                for r in page {
                    // A correction goes to everyone who got the original, whatever they
                    // follow now.
                    if (msg.correction.is_some() || subscribers::wants(&r.components, &components))
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
