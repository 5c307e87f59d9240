//! One update, every channel: the status page, the Atom feed, the webhook's JSON, the email and
//! the post of every social and chat network (fitted to its length limit) tell the same facts:
//! the same status, the same components, the same estimate and the same next-update promise.

use candor::channels::fit::Counter;
use feed_rs::parser;
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::email::{start_sink, subscribe_and_confirm};
use crate::helpers::*;

/// The facts a reader takes from one channel's rendering.
#[derive(Debug, PartialEq, Eq)]
struct Facts {
    status: String,
    components: Vec<String>,
    /// "We expect this fixed by 14:00 UTC" (the sentence, up to its time).
    estimate: String,
    /// "Next update by 12:30 UTC".
    next_update: String,
}

/// The sentence of `text` that starts with `start`, up to its first `.` or ` (`.
fn sentence(text: &str, start: &str) -> Option<String> {
    let at = text.find(start)?;
    let rest = &text[at..];
    let end = [rest.find('.'), rest.find(" (")]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(rest.len());
    Some(rest[..end].to_string())
}

/// Facts from a plain text that names its components after `Affects: `.
fn facts_of_text(status: &str, text: &str) -> Facts {
    let line = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Affects: "))
        .unwrap_or_else(|| panic!("no components in {text}"));
    Facts {
        status: status.to_string(),
        components: line.split(", ").map(str::to_string).collect(),
        // A revised estimate says so, with its reason; else the estimate as it stands.
        estimate: sentence(text, "We now expect")
            .or_else(|| sentence(text, "We expect this fixed by"))
            .unwrap_or_else(|| panic!("no estimate in {text}")),
        next_update: sentence(text, "Next update by")
            .unwrap_or_else(|| panic!("no next update in {text}")),
    }
}

/// A post's status: the label before the title on its first line.
fn post_facts(text: &str) -> Facts {
    let status = text.lines().next().unwrap().split(':').next().unwrap();
    facts_of_text(status, text)
}

/// HTML as the text a reader sees (tags dropped, the few entities the templates write).
fn visible(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&#x2f;", "/").replace("&amp;", "&")
}

fn ok_json(v: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(v)
}

async fn mount_everything(m: &MockServer) {
    Mock::given(method("GET"))
        .and(path("/api/v2/instance"))
        .respond_with(ok_json(json!({ "configuration": { "statuses": {
            "max_characters": 500, "characters_reserved_per_url": 23 } } })))
        .mount(m)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v1/statuses"))
        .respond_with(ok_json(
            json!({ "id": "1", "url": "https://social.acme.test/@acme/1" }),
        ))
        .mount(m)
        .await;
    Mock::given(method("POST"))
        .and(path("/xrpc/com.atproto.server.createSession"))
        .respond_with(ok_json(json!({ "accessJwt": "a", "refreshJwt": "r",
            "handle": "acme.test", "did": "did:plc:acme" })))
        .mount(m)
        .await;
    Mock::given(method("POST"))
        .and(path("/xrpc/com.atproto.repo.createRecord"))
        .respond_with(|r: &Request| {
            let rkey = serde_json::from_slice::<Value>(&r.body).unwrap()["rkey"].clone();
            ok_json(
                json!({ "uri": format!("at://did:plc:acme/app.bsky.feed.post/{}",
                rkey.as_str().unwrap()), "cid": "bafycid" }),
            )
        })
        .mount(m)
        .await;
    Mock::given(method("POST"))
        .and(path("/2/tweets"))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({ "data": { "id": "19", "text": "." } })),
        )
        .mount(m)
        .await;
    Mock::given(method("POST"))
        .and(path("/slack"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(m)
        .await;
    Mock::given(method("POST"))
        .and(path("/discord"))
        .respond_with(ok_json(json!({ "id": "55" })))
        .mount(m)
        .await;
    Mock::given(method("POST"))
        .and(path("/facts-hook"))
        .respond_with(ResponseTemplate::new(204))
        .mount(m)
        .await;
}

fn channels_yaml(m: &MockServer) -> String {
    let u = m.uri();
    format!(
        "  masto: {{ type: mastodon, instance: \"{u}\", access_token: \"t\" }}\n  \
         sky: {{ type: bluesky, service: \"{u}\", identifier: \"acme.test\", app_password: \"abcd-efgh-ijkl-mnop\" }}\n  \
         xcom: {{ type: x, api_url: \"{u}\", consumer_key: \"a\", consumer_secret: \"b\", access_token: \"c\", access_token_secret: \"d\" }}\n  \
         team: {{ type: slack, webhook_url: \"{u}/slack\" }}\n  \
         disc: {{ type: discord, webhook_url: \"{u}/discord\" }}\n  \
         hooked: {{ type: webhook, url: \"{u}/facts-hook\" }}\n"
    )
}

/// The body of the last request to `p`.
async fn last_body(m: &MockServer, p: &str) -> Vec<u8> {
    m.received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.url.path() == p)
        .last()
        .unwrap_or_else(|| panic!("nothing sent to {p}"))
        .body
}

fn json_body(b: &[u8]) -> Value {
    serde_json::from_slice(b).unwrap()
}

const STORY: &str = "Some customers cannot sign in because the session store behind \
    auth.acme.com is refusing connections after a failover; we are moving traffic to the \
    standby region at eu-west-1.acme.com, draining the old primary and warming caches so that \
    sign-ins recover without forcing anyone to log in again. ";

#[tokio::test]
async fn one_update_tells_the_same_facts_on_every_channel() {
    let Some(sink) = start_sink() else { return };
    let m = MockServer::start().await;
    mount_everything(&m).await;
    let t = spawn_app_with(Options {
        extra_channels: Some(channels_yaml(&m)),
        extra: Some(format!(
            "  email: {{ type: email, smtp_url: \"smtp://127.0.0.1:{}\", from: \"Acme Status <status@acme.test>\", \
             token_secret: \"test-secret-that-is-long-enough-0123456789\" }}\n",
            sink.port
        )),
        ..Default::default()
    })
    .await;
    subscribe_and_confirm(&t, &sink, "ann@example.com", json!([])).await;
    let id = t
        .declare(
            json!({ "title": "Login failures", "impact": "major", "message": "Looking.",
                         "components": { "web": "partial_outage" }, "eta_in": "1h" }),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    t.dispatch_all().await;
    // The update: long enough that every network with a limit has to fit it.
    let r = t
        .post(
            &format!("/api/v1/incidents/{id}/updates"),
            &json!({ "message": STORY.repeat(3), "status": "identified",
                     "components": { "web": "partial_outage", "api": "major_outage" },
                     "eta_in": "2h", "eta_reason": "the restore is slower than planned",
                     "next_update_in": "30m" }),
        )
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    t.dispatch_all().await;
    t.assert_outbox_empty().await;

    let expected = Facts {
        status: "Identified".into(),
        components: vec!["Public API".into(), "Website".into()],
        estimate: "We now expect Mon 23 Nov, 14:00 UTC instead of 13:00: the restore is slower than planned"
            .into(),
        next_update: "Next update by Mon 23 Nov, 12:30 UTC".into(),
    };

    // The webhook: the message's own facts, and its text.
    let hook = json_body(&last_body(&m, "/facts-hook").await);
    let msg = &hook["message"];
    assert_eq!(msg["status"], "identified");
    let names: Vec<String> = msg["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, expected.components);
    let eta_line = msg["eta_line"].as_str().unwrap().to_string();
    let next_line = msg["next_update_line"].as_str().unwrap().to_string();
    assert_eq!(sentence(&eta_line, "We").unwrap(), expected.estimate);
    assert_eq!(sentence(&next_line, "Next").unwrap(), expected.next_update);
    assert_eq!(post_facts(hook["text"].as_str().unwrap()), expected);

    // Every network's post, fitted to its limit: the promise lines whole.
    let mut posts = vec![
        (
            "x",
            json_body(&last_body(&m, "/2/tweets").await)["text"].clone(),
        ),
        (
            "bluesky",
            json_body(&last_body(&m, "/xrpc/com.atproto.repo.createRecord").await)["record"]
                ["text"]
                .clone(),
        ),
        (
            "slack",
            json_body(&last_body(&m, "/slack").await)["text"].clone(),
        ),
        (
            "discord",
            json_body(&last_body(&m, "/discord").await)["content"].clone(),
        ),
    ];
    let form: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(&last_body(&m, "/api/v1/statuses").await)
            .into_owned()
            .collect();
    posts.push(("mastodon", Value::String(form["status"].clone())));
    for (network, text) in &posts {
        let text = text.as_str().unwrap();
        assert_eq!(post_facts(text), expected, "{network}: {text}");
        assert!(
            text.contains(&format!("{eta_line} {next_line}")),
            "{network}: {text}"
        );
        assert!(
            text.ends_with(&format!("https://status.acme.test/incidents/{id}")),
            "{network}: {text}"
        );
    }
    // X and Bluesky had to shorten the story, not the promise, and measure within their limits.
    let (x, sky) = (posts[0].1.as_str().unwrap(), posts[1].1.as_str().unwrap());
    assert!(
        Counter::Weighted.count(x) <= 280 && Counter::Weighted.count(x) > 250,
        "{x}"
    );
    assert!(Counter::Graphemes.count(sky) <= 300, "{sky}");
    assert!(posts[0].1.as_str().unwrap().contains('…'));
    assert!(posts[1].1.as_str().unwrap().contains('…'));

    // The email, text and HTML parts.
    let mails = sink.wait_for(3).await;
    let (text, html) = mails[2].parts();
    assert_eq!(post_facts(&text), expected, "{text}");
    let seen = visible(&html);
    // Lines: the <title>, then the status, the title, the components...
    let status = seen.lines().map(str::trim).filter(|l| !l.is_empty()).nth(1);
    assert_eq!(facts_of_text(status.unwrap(), &seen), expected, "{html}");

    // The Atom entry of the update.
    let atom = t.page("/feed.atom").await.text().await.unwrap();
    let feed = parser::parse(atom.as_bytes()).unwrap();
    let entry = &feed.entries[0];
    let title = entry.title.as_ref().unwrap().content.clone();
    assert_eq!(title, "Login failures: Identified");
    let content = entry.content.as_ref().unwrap().body.clone().unwrap();
    assert_eq!(facts_of_text("Identified", &content), expected, "{content}");
    // And RSS, which carries the same text as HTML.
    let rss = t.page("/feed.rss").await.text().await.unwrap();
    assert!(rss.contains(&expected.estimate) && rss.contains(&expected.next_update));

    // The status page of the incident.
    let html = t
        .page(&format!("/incidents/{id}"))
        .await
        .text()
        .await
        .unwrap();
    // "<p class="meta">Identified · major impact · began ..."
    let meta = html.split(r#"<p class="meta">"#).nth(1).unwrap();
    let status = meta.split(" · ").next().unwrap();
    let page = visible(html.split("<main").nth(1).unwrap());
    let mut facts = facts_of_text(status, &page);
    // The page adds each component's state: "Website (partial outage)".
    facts.components = facts
        .components
        .iter()
        .map(|c| c.split(" (").next().unwrap().to_string())
        .collect();
    // The page says times relative to today ("14:00 UTC today") and keeps the reason in the
    // estimate's history, so its facts are compared by time and reason.
    assert_eq!(facts.status, expected.status, "{page}");
    assert_eq!(facts.components, expected.components, "{page}");
    assert!(facts.estimate.contains("14:00 UTC"), "{page}");
    assert!(
        page.contains("the restore is slower than planned"),
        "{page}"
    );
    assert!(facts.next_update.contains("12:30 UTC"), "{page}");
    t.finish().await;
}
