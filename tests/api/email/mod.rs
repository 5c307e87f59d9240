//! Email subscribers, through a real SMTP server (aiosmtpd, tests/smtp/sink.py) that stores
//! every message it accepts; the tests parse what it received. Without python3 and aiosmtpd
//! they fail, naming what to install; `CANDOR_SKIP_SMTP_TESTS=1` skips them and says so.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use candor::domain::subscriber::SubscriberEmail;
use candor::store::subscribers;
use serde_json::{json, Value};

use crate::helpers::*;

mod confirm;
mod correction;
mod fanout;
mod headers;
mod threading;

/// The SMTP server of one test; stopped when dropped.
pub(crate) struct Sink {
    child: Child,
    pub(crate) port: u16,
    dir: tempfile::TempDir,
    /// The app mailing it: [`Sink::wait_for`] runs its outbox, as the workers would.
    app: std::sync::OnceLock<candor::App>,
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the sink (offering PIPELINING), or returns `None` when `CANDOR_SKIP_SMTP_TESTS` is set.
pub(crate) fn start_sink() -> Option<Sink> {
    start_sink_with(true)
}

/// Whether the SMTP tests were explicitly opted out of (`CANDOR_SKIP_SMTP_TESTS=1`).
pub(crate) fn skip_smtp_tests(why: &str) -> bool {
    crate::helpers::opted_out("CANDOR_SKIP_SMTP_TESTS", why)
}

/// Starts the sink, offering PIPELINING or not. Without python3 and aiosmtpd the test fails
/// naming what to install, unless `CANDOR_SKIP_SMTP_TESTS` is set.
pub(crate) fn start_sink_with(pipelining: bool) -> Option<Sink> {
    if skip_smtp_tests("the email tests need python3 with aiosmtpd") {
        return None;
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/smtp/sink.py");
    let has_aiosmtpd = Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        has_aiosmtpd,
        "the email tests need a real SMTP server: python3 with aiosmtpd (tests/smtp/sink.py). \
         Install it with `pip install aiosmtpd dkimpy` (dkimpy checks DKIM signatures), or set \
         CANDOR_SKIP_SMTP_TESTS=1 to skip these tests"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new("python3")
        .arg(&script)
        .arg(dir.path())
        .arg(port.to_string())
        .args((!pipelining).then_some("--no-pipelining"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the SMTP sink");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready", "the SMTP sink did not start");
    Some(Sink {
        child,
        port,
        dir,
        app: std::sync::OnceLock::new(),
    })
}

/// One received message.
pub(crate) struct Mail {
    raw: Vec<u8>,
}

impl Mail {
    fn parsed(&self) -> mailparse::ParsedMail<'_> {
        mailparse::parse_mail(&self.raw).expect("a parsable message")
    }
    fn header(&self, name: &str) -> Option<String> {
        use mailparse::MailHeaderMap;
        self.parsed().headers.get_first_value(name)
    }
    /// Every value of header `name`, in order.
    fn headers(&self, name: &str) -> Vec<String> {
        use mailparse::MailHeaderMap;
        self.parsed().headers.get_all_values(name)
    }
    pub(crate) fn to(&self) -> String {
        self.header("X-Envelope-To").unwrap()
    }
    /// The text/plain and text/html parts of a multipart/alternative body.
    pub(crate) fn parts(&self) -> (String, String) {
        let p = self.parsed();
        assert_eq!(p.ctype.mimetype, "multipart/alternative");
        let find = |t: &str| {
            p.subparts
                .iter()
                .find(|s| s.ctype.mimetype == t)
                .unwrap_or_else(|| panic!("no {t} part"))
                .get_body()
                .unwrap()
        };
        // minijinja escapes `/` in HTML; entities mean the same characters to a mail reader.
        (find("text/plain"), find("text/html").replace("&#x2f;", "/"))
    }
}

impl Sink {
    pub(crate) fn mails(&self) -> Vec<Mail> {
        let mut names: Vec<_> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|p| Mail {
                raw: std::fs::read(p).unwrap(),
            })
            .collect()
    }

    /// Delivers what is due at the clock's time (confirmation mails go through the outbox, as
    /// every message does) and waits until `n` mails have arrived.
    pub(crate) async fn wait_for(&self, n: usize) -> Vec<Mail> {
        for _ in 0..500 {
            if let Some(app) = self.app.get() {
                app.outbox().drain().await.expect("drain");
            }
            let m = self.mails();
            if m.len() >= n {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("expected {n} mails, got {}", self.mails().len());
    }

    /// The MAIL commands received, and those among them sent pipelined (RCPT already sent).
    fn mail_commands(&self) -> (usize, usize) {
        let read = |name: &str| {
            std::fs::read_to_string(self.dir.path().join(name))
                .map(|s| s.trim().parse().unwrap())
                .unwrap_or(0)
        };
        (read("mail_commands"), read("pipelined"))
    }

    pub(crate) fn fail_after(&self, n: Option<usize>) {
        self.set("fail_after", n)
    }

    fn hang_after(&self, n: Option<usize>) {
        self.set("hang_after", n)
    }

    fn set(&self, file: &str, n: Option<usize>) {
        let f = self.dir.path().join(file);
        match n {
            Some(n) => std::fs::write(f, n.to_string()).unwrap(),
            None => std::fs::remove_file(f).unwrap(),
        }
    }
}

const SECRET: &str = "test-secret-that-is-long-enough-0123456789";

pub(crate) async fn app_with_email(sink: &Sink, extra: &str) -> TestApp {
    let t = spawn_app_with(Options {
        extra: Some(format!(
            "  email: {{ type: email, smtp_url: \"smtp://127.0.0.1:{}\", from: \"Acme Status <status@acme.test>\", \
             token_secret: \"{SECRET}\", connections: 3, page_size: 7, {extra} limits: {{ timeout: 5s }} }}\n",
            sink.port
        )),
        ..Default::default()
    })
    .await;
    let _ = sink.app.set(t.app.clone());
    t
}

fn incident(components: Value) -> Value {
    json!({ "title": "Login <failures>", "impact": "major", "message": "Some users cannot log in.",
            "components": components, "eta_in": "1h" })
}

/// The operators' subscriber counts.
async fn counts(t: &TestApp) -> Value {
    t.get("/api/v1/subscribers/counts")
        .await
        .json()
        .await
        .unwrap()
}

/// A mail provider's one-click unsubscribe (RFC 8058) of `url`: no cookie, no redirects.
async fn one_click(t: &TestApp, url: &str) -> reqwest::Response {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    client
        .post(t.url(&path_of(url)))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap()
}

/// The path of a link in a mail (the site's public URL is not this test server).
fn path_of(url: &str) -> String {
    url::Url::parse(url).unwrap().path().to_string()
}

fn link_in(text: &str, prefix: &str) -> String {
    text.split_whitespace()
        .find(|w| w.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix} link in {text}"))
        .to_string()
}

/// Subscribes through the public API and follows the confirmation link; returns the mails
/// received so far.
pub(crate) async fn subscribe_and_confirm(
    t: &TestApp,
    sink: &Sink,
    email: &str,
    components: Value,
) {
    // The confirmation mail goes out through `t`'s outbox (an app built without
    // `app_with_email` is made known to the sink here).
    let _ = sink.app.set(t.app.clone());
    let before = sink.mails().len();
    let r = t
        .http
        .post(t.url("/api/v1/subscribers"))
        .json(&json!({ "email": email, "components": components }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let mails = sink.wait_for(before + 1).await;
    let confirm = &mails[before];
    let (text, _) = confirm.parts();
    let link = link_in(&text, "https://status.acme.test/subscribe/confirm/");
    let r = t.http.post(t.url(&path_of(&link))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("You are subscribed"));
}

/// Seeds `n` confirmed subscribers to everything, straight through the store.
pub(crate) async fn seed(t: &TestApp, n: usize) {
    let addresses: Vec<String> = (0..n).map(|i| format!("user{i:03}@example.com")).collect();
    seed_addresses(t, &addresses).await;
}

async fn reached(t: &TestApp) -> (i64, i64) {
    let mut conn = t.app.db.pool().acquire().await.unwrap();
    let (id,): (i64,) = sqlx::query_as("SELECT id FROM deliveries WHERE channel = 'email'")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    (id, subscribers::reach(&mut conn, id).await.unwrap().sent)
}

/// Seeds confirmed subscribers to everything with the given addresses, straight through the
/// store.
async fn seed_addresses(t: &TestApp, addresses: &[String]) {
    let mut conn = t.app.db.pool().acquire().await.unwrap();
    let now = t.clock_now();
    for a in addresses {
        let email = SubscriberEmail::parse(a).unwrap();
        let id = subscribers::subscribe(&mut conn, &email, None, now, now)
            .await
            .unwrap()
            .expect("a new address needs confirming");
        let token = subscribers::confirmation_token();
        let expires = now + chrono::Duration::hours(1);
        assert!(
            subscribers::set_confirmation(&mut conn, id, &token, expires)
                .await
                .unwrap()
        );
        assert_eq!(
            subscribers::confirm(&mut conn, &token, now).await.unwrap(),
            Some(id)
        );
    }
}
