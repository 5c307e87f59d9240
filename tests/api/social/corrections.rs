//! Corrections reach every channel the original reached, each in its own documented way:
//! Mastodon edits the status (`PUT /api/v1/statuses/:id`) and replies too when the meaning
//! changed; Bluesky replies in the thread; a webhook gets `event: update.corrected`. The update
//! keeps its words and time; the correction is shown under it and audited.

use super::*;

fn status_json(id: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "id": id, "url": format!("https://social.acme.test/@acme/{id}"),
        "content": "<p>...</p>", "visibility": "public"
    }))
}

async fn correct(t: &TestApp, id: i64, update_id: i64, body: Value) -> reqwest::Response {
    t.post(
        &format!("/api/v1/incidents/{id}/updates/{update_id}/corrections"),
        &body,
    )
    .await
}

#[tokio::test]
async fn mastodon_edits_the_status_and_replies_only_when_the_meaning_changed() {
    let m = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v2/instance"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "configuration": { "statuses": { "max_characters": 500, "characters_reserved_per_url": 23 } }
        })))
        .mount(&m)
        .await;
    let next = AtomicUsize::new(100);
    Mock::given(method("POST"))
        .and(path("/api/v1/statuses"))
        .and(header("authorization", "Bearer masto-token"))
        .respond_with(move |_: &Request| {
            status_json(&(next.fetch_add(1, Ordering::SeqCst) + 1).to_string())
        })
        .expect(2)
        .mount(&m)
        .await;
    Mock::given(method("PUT"))
        .and(path("/api/v1/statuses/101"))
        .and(header("authorization", "Bearer masto-token"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .respond_with(status_json("101"))
        .expect(2)
        .mount(&m)
        .await;
    let t = app(format!(
        "  masto: {{ type: mastodon, instance: \"{}\", access_token: \"masto-token\" }}\n",
        m.uri()
    ))
    .await;
    let id = declare(&t, "Sign-ins fail in the US region.").await;
    t.dispatch_all().await;
    let update_id = t.incident(id).await["updates"][0]["id"].as_i64().unwrap();

    // 1. A typo: the status is edited, nothing new is posted.
    t.advance(std::time::Duration::from_secs(120));
    let r = correct(
        &t,
        id,
        update_id,
        json!({ "message": "Sign-ins fail in the US region!", "reason": "punctuation" }),
    )
    .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    t.dispatch_all().await;
    let puts = requests_to(&m, "/api/v1/statuses/101").await;
    assert_eq!(puts.len(), 1);
    let edited = form_of(&puts[0]);
    assert_eq!(edited.keys().collect::<Vec<_>>(), vec!["status"]);
    assert!(
        edited["status"].contains(
            "Sign-ins fail in the US region!\n\n(Corrected at Mon 23 Nov, 12:02 UTC: punctuation)"
        ),
        "{}",
        edited["status"]
    );
    assert!(edited["status"].ends_with(&incident_url(id)));
    assert_eq!(requests_to(&m, "/api/v1/statuses").await.len(), 1);

    // 2. The meaning changed: the status is edited again and a reply says so.
    t.advance(std::time::Duration::from_secs(120));
    let r = correct(
        &t,
        id,
        update_id,
        json!({ "message": "Sign-ins fail in the EU region.", "reason": "we named the wrong region",
                "meaning_changed": true }),
    )
    .await;
    assert_eq!(r.status(), 201);
    t.dispatch_all().await;
    let puts = requests_to(&m, "/api/v1/statuses/101").await;
    assert_eq!(puts.len(), 2);
    assert!(form_of(&puts[1])["status"].contains("Sign-ins fail in the EU region."));
    let posts = requests_to(&m, "/api/v1/statuses").await;
    assert_eq!(posts.len(), 2);
    let reply = form_of(&posts[1]);
    assert_eq!(reply["in_reply_to_id"], "101");
    assert!(
        reply["status"].contains(
            "Correction to our update of Mon 23 Nov, 12:00 UTC. It now reads: \"Sign-ins fail in the EU region.\"\n\nWhy: we named the wrong region"
        ),
        "{}",
        reply["status"]
    );

    // The original stays, with both corrections under it; times are the server's.
    let i = t.incident(id).await;
    let u = &i["updates"][0];
    assert_eq!(u["message"], "Sign-ins fail in the US region.");
    assert_eq!(u["created_at"], "2026-11-23T12:00:00Z");
    assert_eq!(u["corrections"].as_array().unwrap().len(), 2);
    assert_eq!(u["corrections"][1]["created_at"], "2026-11-23T12:04:00Z");
    assert_eq!(u["corrections"][1]["reason"], "we named the wrong region");
    let html = t
        .page(&format!("/incidents/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("Sign-ins fail in the US region."), "{html}");
    assert!(html.contains("Corrected at <time"), "{html}");
    assert!(html.contains("we named the wrong region"));
    let atom = t.page("/feed.atom").await.text().await.unwrap();
    assert!(
        atom.contains("<updated>2026-11-23T12:04:00+00:00</updated>"),
        "{atom}"
    );
    assert!(atom.contains("It now reads: Sign-ins fail in the EU region."));
    let v2 = t
        .page("/api/v2/incidents.json")
        .await
        .json::<Value>()
        .await
        .unwrap();
    let upd = &v2["incidents"][0]["incident_updates"][0];
    assert_eq!(upd["body"], "Sign-ins fail in the US region.");
    assert_eq!(
        upd["corrections"][1]["body"],
        "Sign-ins fail in the EU region."
    );
    assert_eq!(upd["updated_at"], "2026-11-23T12:04:00.000Z");
    t.finish().await;
}

#[tokio::test]
async fn bluesky_replies_in_the_thread_and_webhooks_get_update_corrected() {
    let m = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/xrpc/com.atproto.server.createSession"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "accessJwt": "access-1", "refreshJwt": "refresh-1", "handle": "acme.test",
            "did": "did:plc:acme"
        })))
        .mount(&m)
        .await;
    let n = AtomicUsize::new(0);
    Mock::given(method("POST"))
        .and(path("/xrpc/com.atproto.repo.createRecord"))
        .and(header("authorization", "Bearer access-1"))
        .respond_with(move |r: &Request| {
            let k = n.fetch_add(1, Ordering::SeqCst);
            let rkey = json_of(r)["rkey"].as_str().unwrap().to_string();
            ResponseTemplate::new(200).set_body_json(json!({
                "uri": format!("at://did:plc:acme/app.bsky.feed.post/{rkey}"),
                "cid": format!("bafycid{k}"),
            }))
        })
        .expect(2)
        .mount(&m)
        .await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(204))
        .expect(2)
        .mount(&m)
        .await;
    let t = app(format!(
        "  sky: {{ type: bluesky, service: \"{u}\", identifier: \"acme.test\", app_password: \"abcd-efgh-ijkl-mnop\" }}\n  hook: {{ type: webhook, url: \"{u}/hook\" }}\n",
        u = m.uri()
    ))
    .await;
    let id = declare(&t, "Payments fail.").await;
    t.dispatch_all().await;
    let update_id = t.incident(id).await["updates"][0]["id"].as_i64().unwrap();
    let r = correct(
        &t,
        id,
        update_id,
        json!({ "message": "Card payments fail; invoices work.", "reason": "only cards are affected" }),
    )
    .await;
    assert_eq!(r.status(), 201);
    t.dispatch_all().await;

    let records = requests_to(&m, "/xrpc/com.atproto.repo.createRecord").await;
    assert_eq!(records.len(), 2);
    let first = json_of(&records[0]);
    let reply = json_of(&records[1]);
    let first_uri = format!(
        "at://did:plc:acme/app.bsky.feed.post/{}",
        first["rkey"].as_str().unwrap()
    );
    assert_eq!(reply["record"]["reply"]["root"]["uri"], first_uri.as_str());
    assert_eq!(
        reply["record"]["reply"]["parent"]["uri"],
        first_uri.as_str()
    );
    assert_eq!(reply["record"]["reply"]["parent"]["cid"], "bafycid0");
    assert!(reply["record"]["text"]
        .as_str()
        .unwrap()
        .contains("It now reads: \"Card payments fail; invoices work.\""));

    let hooks = requests_to(&m, "/hook").await;
    assert_eq!(json_of(&hooks[0])["event"], "update.published");
    let fix = json_of(&hooks[1]);
    assert_eq!(fix["event"], "update.corrected");
    assert_eq!(fix["message"]["kind"], "correction");
    assert_eq!(fix["message"]["update_id"], update_id);
    assert_eq!(
        fix["message"]["correction"]["corrected_body"],
        "Card payments fail; invoices work."
    );
    assert_eq!(
        fix["message"]["correction"]["reason"],
        "only cards are affected"
    );

    // Refusals name what was wrong; nothing takes a time from the caller.
    let same = correct(
        &t,
        id,
        update_id,
        json!({ "message": "Card payments fail; invoices work.", "reason": "again" }),
    )
    .await;
    assert_eq!(same.status(), 422);
    assert!(same.text().await.unwrap().contains("message"));
    let backdated = correct(
        &t,
        id,
        update_id,
        json!({ "message": "x", "reason": "y", "created_at": "2020-01-01T00:00:00Z" }),
    )
    .await;
    assert_eq!(backdated.status(), 422);
    assert!(backdated.text().await.unwrap().contains("created_at"));
    let elsewhere = correct(&t, id, 9999, json!({ "message": "x", "reason": "y" })).await;
    assert_eq!(elsewhere.status(), 422);

    // The audit log has it.
    let mut conn = t.app.db.pool().acquire().await.unwrap();
    let audit = candor::store::audit::recent(&mut conn, 20).await.unwrap();
    assert!(audit.iter().any(|a| a.action == "update.correct"));
    drop(conn);
    t.finish().await;
}
