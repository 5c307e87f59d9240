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

/// Whether the SMTP tests were explicitly opted out of (`CANDOR_SKIP_SMTP_TESTS=1`): then they
/// pass without running, and say so on stderr past the test harness's capture.
pub(crate) fn skip_smtp_tests(why: &str) -> bool {
    let skip = std::env::var("CANDOR_SKIP_SMTP_TESTS").is_ok_and(|v| !v.is_empty() && v != "0");
    if skip {
        use std::io::Write;
        let name = std::thread::current()
            .name()
            .unwrap_or("a test")
            .to_string();
        let line = format!("SKIPPED {name}: CANDOR_SKIP_SMTP_TESTS is set ({why})\n");
        let _ = std::io::stderr().write_all(line.as_bytes());
    }
    skip
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

/// The path of a link in a mail (the site's public URL is not this test server).
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

#[tokio::test]
async fn double_opt_in_sends_nothing_but_the_confirmation_until_it_is_followed() {
    let Some(sink) = start_sink() else { return };
    let t = app_with_email(&sink, "").await;
    let ask = || async {
        let r = t
            .http
            .post(t.url("/api/v1/subscribers"))
            .json(&json!({ "email": "Ann@Example.com" }))
            .send()
            .await
            .unwrap();
        (r.status(), r.text().await.unwrap())
    };
    let first = ask().await;
    assert_eq!(first.0, 202);
    let mails = sink.wait_for(1).await;
    assert_eq!(mails[0].to(), "Ann@example.com");
    assert!(mails[0].header("Subject").unwrap().contains("Confirm"));
    assert!(mails[0].header("List-Unsubscribe").is_none());
    // Asking again answers exactly the same, and does not mail again within the minute.
    assert_eq!(ask().await, first);
    // Bad input is a 422 naming the field.
    let r = t
        .http
        .post(t.url("/api/v1/subscribers"))
        .json(&json!({ "email": "not an address" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("email"));
    let r = t
        .http
        .post(t.url("/api/v1/subscribers"))
        .json(&json!({ "email": "bob@example.com", "components": ["nope"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("components[0]"));

    // An incident before confirming: nothing is mailed.
    t.declare(incident(json!({ "web": "partial_outage" })))
        .await;
    t.dispatch_all().await;
    assert_eq!(sink.mails().len(), 1);

    // The link's GET only shows a button (scanners prefetch links); the POST confirms.
    let (text, html) = mails[0].parts();
    let link = link_in(&text, "https://status.acme.test/subscribe/confirm/");
    assert!(html.contains(&link));
    let page = t.http.get(t.url(&path_of(&link))).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("<form method=\"post\""));
    let r = t.http.post(t.url(&path_of(&link))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // Used once: a second use is refused.
    let r = t.http.post(t.url(&path_of(&link))).send().await.unwrap();
    assert_eq!(r.status(), 404);

    // Confirmed: the next incident reaches the inbox. Subscribing again is still a quiet 202.
    assert_eq!(ask().await, first);
    t.declare(incident(json!({ "api": "major_outage" }))).await;
    t.dispatch_all().await;
    let mails = sink.wait_for(2).await;
    assert_eq!(mails.len(), 2);
    assert!(mails[1]
        .header("Subject")
        .unwrap()
        .contains("Login <failures>"));
    t.finish().await;
}

#[tokio::test]
async fn confirmation_links_expire() {
    let Some(sink) = start_sink() else { return };
    let t = app_with_email(&sink, "confirm_within: 1h,").await;
    let r = t
        .http
        .post(t.url("/api/v1/subscribers"))
        .json(&json!({ "email": "late@example.com" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let mails = sink.wait_for(1).await;
    let link = link_in(
        &mails[0].parts().0,
        "https://status.acme.test/subscribe/confirm/",
    );
    t.advance(Duration::from_secs(3601));
    let r = t.http.post(t.url(&path_of(&link))).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("expired"));
    t.finish().await;
}

#[tokio::test]
async fn updates_are_multipart_with_one_click_unsubscribe_and_one_thread_per_incident() {
    let Some(sink) = start_sink() else { return };
    let t = app_with_email(&sink, "").await;
    subscribe_and_confirm(&t, &sink, "ann@example.com", json!([])).await;
    let id = t
        .declare(incident(json!({ "web": "partial_outage" })))
        .await["id"]
        .as_i64()
        .unwrap();
    t.dispatch_all().await;
    let r = t
        .post(
            &format!("/api/v1/incidents/{id}/updates"),
            &json!({ "message": "We found the cause.", "status": "identified" }),
        )
        .await;
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    t.dispatch_all().await;
    let mails = sink.wait_for(3).await;
    let (first, second) = (&mails[1], &mails[2]);

    // Multipart text and HTML, the HTML escaped, both with the unsubscribe link.
    let (text, html) = first.parts();
    assert!(text.contains("Some users cannot log in."));
    assert!(text.contains("Login <failures>"));
    assert!(html.contains("Login &lt;failures&gt;"));
    assert!(html.contains(&format!("https://status.acme.test/incidents/{id}")));
    let unsubscribe = first.header("List-Unsubscribe").unwrap();
    assert!(
        unsubscribe.starts_with("<https://status.acme.test/unsubscribe/")
            && unsubscribe.ends_with('>'),
        "{unsubscribe}"
    );
    let url = unsubscribe
        .trim_matches(|c| c == '<' || c == '>')
        .to_string();
    assert!(text.contains(&url) && html.contains(&url));
    assert_eq!(
        first.header("List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );

    // Threading: the update replies to the first mail of the incident.
    let root = first.header("Message-ID").unwrap();
    assert!(
        root.contains(&format!("incident-{id}.")) && root.ends_with("@acme.test>"),
        "{root}"
    );
    assert!(first.header("In-Reply-To").is_none());
    let reply_id = second.header("Message-ID").unwrap();
    assert_ne!(reply_id, root);
    assert_eq!(second.header("In-Reply-To"), Some(root.clone()));
    assert_eq!(second.header("References"), Some(root.clone()));
    assert!(second.parts().0.contains("We found the cause."));

    // The GET shows a button and changes nothing (link scanners prefetch).
    let page = t.http.get(t.url(&path_of(&url))).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("<form method=\"post\""));

    // One-click POST (RFC 8058): no cookie, no redirect, and it unsubscribes.
    let r = one_click(&t, &url).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("set-cookie").is_none());
    assert!(r.headers().get("location").is_none());
    // A forged token does nothing.
    let forged = format!("{}x", &url[..url.len() - 1]);
    let r = one_click(&t, &forged).await;
    assert_eq!(r.status(), 404);

    let r = t
        .post(
            &format!("/api/v1/incidents/{id}/resolve"),
            &json!({ "message": "Fixed." }),
        )
        .await;
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    t.dispatch_all().await;
    assert_eq!(sink.mails().len(), 3, "an unsubscribed address got mail");
    t.finish().await;
}

#[tokio::test]
async fn subscribers_get_only_the_components_they_chose() {
    let Some(sink) = start_sink() else { return };
    let t = app_with_email(&sink, "").await;
    subscribe_and_confirm(&t, &sink, "all@example.com", json!([])).await;
    subscribe_and_confirm(&t, &sink, "api@example.com", json!(["api"])).await;
    subscribe_and_confirm(&t, &sink, "web@example.com", json!(["web", "email"])).await;
    t.declare(incident(json!({ "web": "partial_outage" })))
        .await;
    t.dispatch_all().await;
    let mails = sink.wait_for(5).await;
    let mut to: Vec<String> = mails[3..].iter().map(Mail::to).collect();
    to.sort();
    assert_eq!(to, vec!["all@example.com", "web@example.com"]);

    let counts = counts(&t).await;
    assert_eq!(counts["confirmed"], 3);
    assert_eq!(counts["all_components"], 1);
    assert_eq!(counts["by_component"]["api"], 1);
    assert_eq!(counts["by_component"]["web"], 1);
    // Operators' side needs a token.
    let r = t
        .http
        .get(t.url("/api/v1/subscribers/counts"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    t.finish().await;
}

/// Seeds `n` confirmed subscribers to everything, straight through the store.
pub(crate) async fn seed(t: &TestApp, n: usize) {
    let addresses: Vec<String> = (0..n).map(|i| format!("user{i:03}@example.com")).collect();
    seed_addresses(t, &addresses).await;
}

#[tokio::test]
async fn a_fan_out_interrupted_midway_resumes_in_another_process_and_sends_nobody_twice() {
    let Some(sink) = start_sink() else { return };
    let t = app_with_email(&sink, "").await;
    seed(&t, 40).await;
    // The mail server goes away after 13 messages.
    sink.fail_after(Some(13));
    t.declare(incident(json!({ "api": "major_outage" }))).await;
    t.dispatch_all().await;
    assert_eq!(sink.mails().len(), 13);
    let delivery: (i64, String) = {
        let mut conn = t.app.db.pool().acquire().await.unwrap();
        sqlx::query_as("SELECT id, state FROM deliveries WHERE channel = 'email'")
            .fetch_one(&mut *conn)
            .await
            .unwrap()
    };
    assert_eq!(delivery.1, "pending", "the delivery waits for a retry");
    let reach: Value = t
        .get(&format!("/api/v1/deliveries/{}/reach", delivery.0))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(reach["sent"], 13);
    // The server is back; another process (a restart) picks the delivery up after its backoff.
    sink.fail_after(None);
    t.advance(Duration::from_secs(3600));
    let other = t.another_instance(vec![]).await;
    other.outbox().drain().await.unwrap();
    let mails = sink.mails();
    let mut to: Vec<String> = mails.iter().map(Mail::to).collect();
    to.sort();
    let before = to.len();
    to.dedup();
    assert_eq!(before, to.len(), "someone got the update twice");
    assert_eq!(to.len(), 40, "someone was skipped");
    let reach: Value = t
        .get(&format!("/api/v1/deliveries/{}/reach", delivery.0))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(reach["sent"], 40);
    t.finish().await;
}

#[tokio::test]
async fn the_status_page_form_subscribes_to_chosen_components_and_operators_manage_subscribers() {
    let Some(sink) = start_sink() else { return };
    let t = app_with_email(&sink, "").await;
    let page = t.page("/").await.text().await.unwrap();
    assert!(
        page.contains("action=\"/subscribe\""),
        "no form on the page"
    );
    assert!(page.contains("value=\"api\""));
    let r = t
        .http
        .post(t.url("/subscribe"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("email=cat%40example.com&components=api&components=email")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Check your inbox"));
    let mails = sink.wait_for(1).await;
    let (text, _) = mails[0].parts();
    assert!(text.contains("Public API, Email delivery"), "{text}");
    // A bad address on the form: the page says what is wrong, with a 422.
    let r = t
        .http
        .post(t.url("/subscribe"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("email=nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("not a valid email address"));

    // Operators: list, send the confirmation again (the old link stops working), remove.
    let list: Value = t.get("/api/v1/subscribers").await.json().await.unwrap();
    let sub = &list["subscribers"][0];
    assert_eq!(sub["email"], "cat@example.com");
    assert_eq!(sub["components"], json!(["api", "email"]));
    let id = sub["id"].as_i64().unwrap();
    let r = t
        .post(
            &format!("/api/v1/subscribers/{id}/confirmation"),
            &json!({}),
        )
        .await;
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    let mails = sink.wait_for(2).await;
    let old = link_in(
        &mails[0].parts().0,
        "https://status.acme.test/subscribe/confirm/",
    );
    let new = link_in(
        &mails[1].parts().0,
        "https://status.acme.test/subscribe/confirm/",
    );
    assert_ne!(old, new);
    let r = t.http.post(t.url(&path_of(&old))).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let r = t.http.post(t.url(&path_of(&new))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // Confirmed: no confirmation to send any more.
    let r = t
        .post(
            &format!("/api/v1/subscribers/{id}/confirmation"),
            &json!({}),
        )
        .await;
    assert_eq!(r.status(), 409);
    let r = t
        .http
        .delete(t.url(&format!("/api/v1/subscribers/{id}")))
        .bearer_auth(&t.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(counts(&t).await["confirmed"], 0);
    t.declare(incident(json!({ "api": "major_outage" }))).await;
    t.dispatch_all().await;
    assert_eq!(sink.mails().len(), 2, "a removed subscriber got mail");
    t.finish().await;
}

#[tokio::test]
async fn dkim_signs_the_threading_and_unsubscribe_headers_too() {
    let Some(sink) = start_sink() else { return };
    let key = sink.dir.path().join("dkim.pem");
    let made = Command::new("openssl")
        .args(["genrsa", "-traditional", "-out"])
        .arg(&key)
        .arg("2048")
        .stderr(Stdio::null())
        .status();
    assert!(
        made.is_ok_and(|s| s.success()),
        "the DKIM test makes its RSA key with openssl: install openssl, or set \
         CANDOR_SKIP_SMTP_TESTS=1 to skip the email tests"
    );
    let t = app_with_email(
        &sink,
        &format!(
            "dkim: {{ selector: candor, domain: acme.test, key_file: \"{}\" }},",
            key.display()
        ),
    )
    .await;
    subscribe_and_confirm(&t, &sink, "dee@example.com", json!([])).await;
    let id = t
        .declare(incident(json!({ "web": "partial_outage" })))
        .await["id"]
        .as_i64()
        .unwrap();
    t.dispatch_all().await;
    let r = t
        .post(
            &format!("/api/v1/incidents/{id}/updates"),
            &json!({ "message": "Still on it.", "status": "identified" }),
        )
        .await;
    assert!(r.status().is_success());
    t.dispatch_all().await;
    let mails = sink.wait_for(3).await;
    let sig = mails[2].header("DKIM-Signature").expect("a DKIM signature");
    let sig: String = sig.split_whitespace().collect();
    assert!(
        sig.contains("d=acme.test") && sig.contains("s=candor"),
        "{sig}"
    );
    let signed = sig
        .split(';')
        .find_map(|kv| kv.trim().strip_prefix("h="))
        .unwrap()
        .to_ascii_lowercase();
    for h in [
        "from",
        "subject",
        "message-id",
        "in-reply-to",
        "references",
        "list-unsubscribe",
        "list-unsubscribe-post",
    ] {
        assert!(
            signed.split(':').any(|x| x == h),
            "{h} is not signed: {signed}"
        );
    }
    t.finish().await;
}

async fn reached(t: &TestApp) -> (i64, i64) {
    let mut conn = t.app.db.pool().acquire().await.unwrap();
    let (id,): (i64,) = sqlx::query_as("SELECT id FROM deliveries WHERE channel = 'email'")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    (id, subscribers::reach(&mut conn, id).await.unwrap().sent)
}

#[tokio::test]
async fn a_worker_killed_mid_fan_out_is_taken_over_and_nobody_gets_the_update_twice() {
    let Some(sink) = start_sink() else { return };
    let t = app_with_email(&sink, "").await;
    seed(&t, 40).await;
    // The server stops answering after 17 messages: the fan-out hangs there, as a process
    // does just before it is killed.
    sink.hang_after(Some(17));
    t.declare(incident(json!({ "api": "major_outage" }))).await;
    let outbox = t.app.outbox();
    let worker = tokio::spawn(async move { outbox.drain().await });
    // Wait (on I/O, not on time) until the sends accepted before the hang (17, or a few more
    // whose RCPT got through just before) are all recorded, and stay so.
    let mut steady = 0;
    for _ in 0..500 {
        let accepted = sink.mails().len() as i64;
        if accepted >= 17 && reached(&t).await.1 == accepted {
            steady += 1;
            if steady == 3 {
                break;
            }
        } else {
            steady = 0;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(steady, 3, "the fan-out did not stop at the hang");
    assert!(reached(&t).await.1 < 40);
    // Kill it mid-fan-out: its connections drop, its lease is left to expire.
    worker.abort();
    let _ = worker.await;
    sink.hang_after(None);
    t.advance(Duration::from_secs(61));
    let other = t.another_instance(vec![]).await;
    other.outbox().drain().await.unwrap();
    let mut to: Vec<String> = sink.mails().iter().map(Mail::to).collect();
    to.sort();
    let all = to.len();
    to.dedup();
    assert_eq!(all, to.len(), "someone got the update twice");
    assert_eq!(to.len(), 40, "someone was skipped");
    assert_eq!(reached(&t).await.1, 40);
    t.finish().await;
}

#[tokio::test]
async fn a_fan_out_longer_than_the_lease_renews_it_and_finishes_at_the_configured_rate() {
    let Some(sink) = start_sink() else { return };
    // A 16 s lease (the shortest the other channels' 15 s timeouts allow) is renewed every
    // 5.3 s; at 5 recipients a second, 35 subscribers take about 6 s of real time, so the lease
    // is renewed while the recorder writes outcomes (which once deadlocked).
    let t = spawn_app_with(Options {
        outbox: Some("lease: 16s, max_attempts: 5, backoff_min: 10s, backoff_max: 10m".into()),
        extra: Some(format!(
            "  email: {{ type: email, smtp_url: \"smtp://127.0.0.1:{}\", from: \"Acme Status <status@acme.test>\", \
             token_secret: \"{SECRET}\", connections: 2, per_second: 5, limits: {{ timeout: 5s }} }}\n",
            sink.port
        )),
        ..Default::default()
    })
    .await;
    seed(&t, 35).await;
    t.declare(incident(json!({ "api": "major_outage" }))).await;
    let started = std::time::Instant::now();
    let report = t.dispatch_all().await;
    let took = started.elapsed();
    assert_eq!(report.dead, 0);
    assert_eq!(reached(&t).await.1, 35);
    assert_eq!(sink.mails().len(), 35);
    // governor lets a first burst through, then 5 a second.
    assert!(
        took >= Duration::from_secs(5),
        "the rate limit was not applied: {took:?}"
    );
    t.finish().await;
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

/// A fan-out to 24 subscribers (ids of one and two digits, so two token lengths; addresses of
/// many lengths, one with `+`), 3 of whom the server refuses for good: the others get their
/// own copy (their address in `To`, their own working unsubscribe link), the refused are
/// recorded as failed with the server's words but not their full address.
async fn fan_out_with_refusals(pipelining: bool) {
    let Some(sink) = start_sink_with(pipelining) else {
        return;
    };
    let t = app_with_email(&sink, "").await;
    let addresses: Vec<String> = (0..24)
        .map(|i| match i {
            4 | 11 | 19 => format!("bounce{i}@example.com"),
            7 => "ann+status@example.com".to_string(),
            _ => format!(
                "{}{i}@ex{}.example.com",
                "u".repeat(1 + i % 5),
                "x".repeat(i % 3)
            ),
        })
        .collect();
    seed_addresses(&t, &addresses).await;
    t.declare(incident(json!({ "api": "major_outage" }))).await;
    let report = t.dispatch_all().await;
    assert_eq!(report.dead, 0);
    let mails = sink.mails();
    let mut to: Vec<String> = mails.iter().map(Mail::to).collect();
    to.sort();
    let mut expected: Vec<String> = addresses
        .iter()
        .filter(|a| !a.starts_with("bounce"))
        .cloned()
        .collect();
    expected.sort();
    assert_eq!(to, expected, "each accepted subscriber gets one copy");
    let mut links = std::collections::HashSet::new();
    for m in &mails {
        assert_eq!(
            m.header("To").unwrap(),
            m.to(),
            "To names the envelope's recipient"
        );
        let header = m.header("List-Unsubscribe").unwrap();
        let (text, html) = m.parts();
        let link = header.trim_matches(['<', '>']).to_string();
        assert!(
            text.contains(&link) && html.contains(&link),
            "the bodies carry the header's link"
        );
        links.insert(link);
    }
    assert_eq!(
        links.len(),
        mails.len(),
        "every copy has its own unsubscribe link"
    );
    // One of them works, and unsubscribes exactly that subscriber.
    let first = mails[0].header("List-Unsubscribe").unwrap();
    let r = one_click(&t, first.trim_matches(['<', '>'])).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        counts(&t).await["confirmed"],
        23,
        "exactly one subscriber left"
    );
    let (delivery, sent) = reached(&t).await;
    assert_eq!(sent, 21);
    let errors: Vec<(String,)> = {
        let mut conn = t.app.db.pool().acquire().await.unwrap();
        sqlx::query_as("SELECT error FROM email_sends WHERE delivery_id = $1 AND state = 'failed'")
            .bind(delivery)
            .fetch_all(&mut *conn)
            .await
            .unwrap()
    };
    assert_eq!(errors.len(), 3);
    for (e,) in &errors {
        assert!(e.contains("550") && e.contains("User unknown"), "{e}");
        assert!(
            !e.contains("bounce4@") && !e.contains("bounce11@") && !e.contains("bounce19@"),
            "{e}"
        );
    }
    let (mail_commands, pipelined) = sink.mail_commands();
    assert_eq!(mail_commands, 24);
    if pipelining {
        assert_eq!(pipelined, 24, "every envelope went out in one write");
    } else {
        assert_eq!(
            pipelined, 0,
            "a server without PIPELINING got one command at a time"
        );
    }
    t.finish().await;
}

#[tokio::test]
async fn a_pipelining_server_gets_each_copy_in_one_round_trip_and_refusals_stay_with_their_address()
{
    fan_out_with_refusals(true).await;
}

#[tokio::test]
async fn a_server_without_pipelining_gets_one_command_at_a_time_with_the_same_outcome() {
    fan_out_with_refusals(false).await;
}
