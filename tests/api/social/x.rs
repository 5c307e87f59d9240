//! X: OAuth 1.0a-signed tweets within 280 weighted characters, replies, 429s, refusals,
//! and the duplicate refusal that ends a retry or a killed worker's takeover.

use super::*;

fn x_yaml(server: &MockServer) -> String {
    format!(
        "  xcom: {{ type: x, api_url: \"{}\", consumer_key: \"ck-123\", consumer_secret: \"cs-456\", access_token: \"at-789\", access_token_secret: \"ats-000\" }}\n",
        server.uri()
    )
}

/// RFC 3986 percent-encoding, as OAuth 1.0a's "Percent encoding parameters" describes it.
fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn unpct(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// Checks an `Authorization: OAuth ...` header the way X does: rebuild the signature base
/// string from the method, URL and oauth_* parameters (a JSON body is not signed) and compare
/// HMAC-SHA1 under "consumer_secret&token_secret".
fn assert_oauth_signed(r: &Request) {
    let h = r.headers["authorization"].to_str().unwrap();
    let params: HashMap<String, String> = h
        .strip_prefix("OAuth ")
        .expect("OAuth scheme")
        .split(',')
        .map(|p| {
            let (k, v) = p.trim().split_once('=').unwrap();
            (k.to_string(), unpct(v.trim_matches('"')))
        })
        .collect();
    assert_eq!(params["oauth_consumer_key"], "ck-123");
    assert_eq!(params["oauth_token"], "at-789");
    assert_eq!(params["oauth_signature_method"], "HMAC-SHA1");
    assert_eq!(params["oauth_version"], "1.0");
    assert!(params["oauth_nonce"].len() >= 8);
    params["oauth_timestamp"].parse::<u64>().unwrap();
    let mut signed: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| *k != "oauth_signature")
        .map(|(k, v)| (pct(k), pct(v)))
        // A query's parameters are signed too (a JSON body's are not).
        .chain(r.url.query_pairs().map(|(k, v)| (pct(&k), pct(&v))))
        .collect();
    signed.sort();
    let param_string = signed
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    // The URL the client signed: scheme, the Host it sent, the path (wiremock's own `url`
    // names its host differently).
    let base_url = format!(
        "http://{}{}",
        r.headers["host"].to_str().unwrap(),
        r.url.path()
    );
    let base = format!("{}&{}&{}", r.method, pct(&base_url), pct(&param_string));
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(b"cs-456&ats-000").unwrap();
    mac.update(base.as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    assert_eq!(params["oauth_signature"], expected, "base string: {base}");
}

/// X's 403 as the API v2 writes it (RFC 7807 problem details).
fn x_forbidden(detail: &str) -> ResponseTemplate {
    ResponseTemplate::new(403).set_body_json(json!({
        "detail": detail, "type": "about:blank", "title": "Forbidden", "status": 403
    }))
}

fn tweet(id: &str) -> ResponseTemplate {
    ResponseTemplate::new(201).set_body_json(json!({
        "data": { "id": id, "text": "...", "edit_history_tweet_ids": [id] }
    }))
}

#[tokio::test]
async fn x_posts_a_signed_tweet_within_280_weighted_then_replies() {
    let m = MockServer::start().await;
    let n = AtomicUsize::new(0);
    Mock::given(method("POST"))
        .and(path("/2/tweets"))
        .and(header("content-type", "application/json"))
        .respond_with(move |_: &Request| {
            tweet(&format!(
                "18000000000000000{}",
                n.fetch_add(1, Ordering::SeqCst)
            ))
        })
        .expect(2)
        .mount(&m)
        .await;
    let t = app(x_yaml(&m)).await;
    let id = declare(&t, LONG).await;
    t.dispatch_all().await;
    update(&t, id, "Sign-ins are recovering.").await;
    t.dispatch_all().await;

    let reqs = requests_to(&m, "/2/tweets").await;
    assert_eq!(reqs.len(), 2);
    for r in &reqs {
        assert_oauth_signed(r);
    }
    let first = json_of(&reqs[0]);
    let text = first["text"].as_str().unwrap();
    assert!(Counter::Weighted.count(text) <= 280, "{text}");
    assert!(Counter::Weighted.count(text) > 240, "{text}");
    assert!(
        text.contains("…\n\nWe expect this fixed by Mon 23 Nov, 13:00 UTC. Next update by Mon 23 Nov, 12:30 UTC.")
            && text.ends_with(&format!("UTC.\n\n{}", incident_url(id))),
        "{text}"
    );
    assert_eq!(first.as_object().unwrap().len(), 1, "text only: {first}");
    let reply = json_of(&reqs[1]);
    assert_eq!(
        reply["reply"],
        json!({ "in_reply_to_tweet_id": "180000000000000000" })
    );
    let ds = deliveries_of(&t, "xcom").await;
    assert_eq!(ds[0].remote_id.as_deref(), Some("180000000000000000"));
    assert_eq!(
        ds[0].remote_url.as_deref(),
        Some("https://x.com/i/web/status/180000000000000000")
    );
    t.finish().await;
}

#[tokio::test]
async fn x_429_waits_for_retry_after_then_for_the_reset_time() {
    let m = MockServer::start().await;
    let t = app(x_yaml(&m)).await;
    let limited = Mock::given(method("POST"))
        .and(path("/2/tweets"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "45")
                .set_body_json(json!({ "title": "Too Many Requests", "detail": "Too Many Requests", "type": "about:blank", "status": 429 })),
        )
        .mount_as_scoped(&m)
        .await;
    declare(&t, "Some users cannot log in.").await;
    assert_eq!(t.dispatch_all().await.retrying, 1);
    assert_eq!(
        deliveries_of(&t, "xcom").await[0].next_attempt_at,
        Some(at(&t, 45))
    );
    drop(limited);
    t.advance(std::time::Duration::from_secs(45));
    let reset = at(&t, 900);
    let limited = Mock::given(method("POST"))
        .and(path("/2/tweets"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("x-rate-limit-limit", "100")
                .insert_header("x-rate-limit-remaining", "0")
                .insert_header("x-rate-limit-reset", reset.timestamp().to_string().as_str())
                .set_body_json(json!({ "title": "Too Many Requests", "status": 429 })),
        )
        .mount_as_scoped(&m)
        .await;
    assert_eq!(t.dispatch_all().await.retrying, 1);
    assert_eq!(
        deliveries_of(&t, "xcom").await[0].next_attempt_at,
        Some(reset)
    );
    drop(limited);
    Mock::given(method("POST"))
        .and(path("/2/tweets"))
        .respond_with(tweet("1"))
        .expect(1)
        .mount(&m)
        .await;
    t.clock.set(reset);
    assert_eq!(t.dispatch_all().await.delivered, 1);
    t.finish().await;
}

#[tokio::test]
async fn x_403_on_a_first_attempt_is_dead_with_xs_words() {
    let m = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/2/tweets"))
        .respond_with(x_forbidden("You are not permitted to perform this action."))
        .expect(1)
        .mount(&m)
        .await;
    let t = app(x_yaml(&m)).await;
    declare(&t, "Some users cannot log in.").await;
    assert_eq!(t.dispatch_all().await.dead, 1);
    assert_eq!(
        deliveries_of(&t, "xcom").await[0].last_error.as_deref(),
        Some("HTTP 403: Forbidden: You are not permitted to perform this action.")
    );
    t.finish().await;
}

/// `GET /2/users/me` for the account the keys act for.
async fn mount_me(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path("/2/users/me"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": { "id": "2244994945", "name": "Acme Status", "username": "acmestatus" }
        })))
        .expect(1)
        .mount(server)
        .await;
}

/// The duplicate's post cannot be looked up (X's lower access levels may not read
/// timelines): the delivery still counts as delivered, without an id.
#[tokio::test]
async fn x_duplicate_refusal_on_a_retry_counts_as_already_posted() {
    let m = MockServer::start().await;
    mount_me(&m).await;
    Mock::given(method("GET"))
        .and(path("/2/users/2244994945/tweets"))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!({
            "title": "Client Forbidden", "reason": "client-not-enrolled",
            "detail": "When authenticating requests to the Twitter API v2 endpoints, you must use keys and tokens from a Twitter developer App that is attached to a Project.",
            "type": "https://api.twitter.com/2/problems/client-forbidden"
        })))
        .expect(1)
        .mount(&m)
        .await;
    // The first attempt posted, but its answer was lost.
    Mock::given(method("POST"))
        .and(path("/2/tweets"))
        .respond_with(ResponseTemplate::new(503).set_body_string("Service Unavailable"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&m)
        .await;
    Mock::given(method("POST"))
        .and(path("/2/tweets"))
        .respond_with(x_forbidden(
            "You are not allowed to create a Tweet with duplicate content.",
        ))
        .with_priority(2)
        .mount(&m)
        .await;
    let t = app(x_yaml(&m)).await;
    declare(&t, "Some users cannot log in.").await;
    assert_eq!(t.dispatch_all().await.retrying, 1);
    t.advance(std::time::Duration::from_secs(600));
    assert_eq!(t.dispatch_all().await.delivered, 1);
    let d = &deliveries_of(&t, "xcom").await[0];
    assert_eq!((d.state.as_str(), d.attempts), ("delivered", 2));
    assert_eq!(
        (d.remote_id.as_deref(), d.remote_url.as_deref()),
        (None, None)
    );
    assert_eq!(
        requests_to(&m, "/2/tweets").await.len(),
        2,
        "posted once, asked twice"
    );
    t.finish().await;
}

/// The same, when the post can be found: the update's first attempt posted but its answer was
/// lost, and the retry is refused as a duplicate. The post's id is looked up among the
/// account's latest posts (`GET /2/users/me`, then `GET /2/users/:id/tweets`): the one with
/// exactly this text (X shortens links to t.co; `entities.urls` gives them back) that answers
/// the same post. The next update then replies to it, and the thread does not branch.
#[tokio::test]
async fn x_duplicate_refusal_recovers_the_post_id_so_the_thread_goes_on_from_it() {
    let m = MockServer::start().await;
    mount_me(&m).await;
    let posted: Arc<Mutex<Option<String>>> = Arc::default();
    let kept = posted.clone();
    let calls = AtomicUsize::new(0);
    Mock::given(method("POST"))
        .and(path("/2/tweets"))
        .respond_with(
            move |r: &Request| match calls.fetch_add(1, Ordering::SeqCst) {
                0 => tweet("100"),
                1 => {
                    // Posted as 101, but the answer never came back.
                    *kept.lock().unwrap() = Some(json_of(r)["text"].as_str().unwrap().to_string());
                    ResponseTemplate::new(503).set_body_string("Service Unavailable")
                }
                2 => x_forbidden("You are not allowed to create a Tweet with duplicate content."),
                _ => tweet("102"),
            },
        )
        .expect(4)
        .mount(&m)
        .await;
    let t = app(x_yaml(&m)).await;
    let id = declare(&t, "Some users cannot log in.").await;
    let url = incident_url(id);
    let tco = "https://t.co/AbCdEf1234";
    Mock::given(method("GET"))
        .and(path("/2/users/2244994945/tweets"))
        .and(query_param("max_results", "10"))
        .and(query_param("tweet.fields", "entities,referenced_tweets"))
        .respond_with(move |_: &Request| {
            let text = posted.lock().unwrap().clone().expect("posted first");
            // As X gives a post back: links as t.co, `&`, `<`, `>` as HTML entities.
            let shown = text.replace(&url, tco).replace('&', "&amp;");
            let start = shown.chars().count() - tco.len();
            let urls = json!([{ "start": start, "end": start + tco.len(), "url": tco,
                                "expanded_url": url, "display_url": "status.acme.test/incidents/…" }]);
            ResponseTemplate::new(200).set_body_json(json!({
                "data": [
                    // The same words answering another post: not ours.
                    { "id": "103", "text": shown, "edit_history_tweet_ids": ["103"],
                      "entities": { "urls": urls },
                      "referenced_tweets": [{ "type": "replied_to", "id": "99" }] },
                    { "id": "101", "text": shown, "edit_history_tweet_ids": ["101"],
                      "entities": { "urls": urls },
                      "referenced_tweets": [{ "type": "replied_to", "id": "100" }] },
                    { "id": "100", "text": "Investigating: Login failures", "edit_history_tweet_ids": ["100"] }
                ],
                "meta": { "result_count": 3, "newest_id": "103", "oldest_id": "100" }
            }))
        })
        .expect(1)
        .mount(&m)
        .await;
    assert_eq!(t.dispatch_all().await.delivered, 2, "here and in the log");
    update(&t, id, "Sign-ins are recovering & we are watching.").await;
    assert_eq!(t.dispatch_all().await.retrying, 1);
    t.advance(std::time::Duration::from_secs(600));
    assert_eq!(t.dispatch_all().await.delivered, 1);
    let ds = deliveries_of(&t, "xcom").await;
    assert_eq!(
        (
            ds[1].attempts,
            ds[1].remote_id.as_deref(),
            ds[1].remote_url.as_deref()
        ),
        (2, Some("101"), Some("https://x.com/i/web/status/101"))
    );
    update(&t, id, "Fixed.").await;
    assert_eq!(t.dispatch_all().await.delivered, 2);
    let reqs = requests_to(&m, "/2/tweets").await;
    assert_eq!(
        json_of(&reqs[3])["reply"],
        json!({ "in_reply_to_tweet_id": "101" }),
        "the thread goes on from the recovered post"
    );
    for p in ["/2/users/me", "/2/users/2244994945/tweets"] {
        let r = &requests_to(&m, p).await[0];
        assert_eq!(r.method.as_str(), "GET");
        assert_oauth_signed(r);
    }
    t.finish().await;
}

#[tokio::test]
async fn x_worker_killed_mid_send_is_taken_over_and_the_duplicate_refusal_ends_it() {
    let m = MockServer::start().await;
    let arrived = Arc::new(tokio::sync::Notify::new());
    let a1 = arrived.clone();
    let calls = Arc::new(AtomicUsize::new(0));
    let c1 = calls.clone();
    Mock::given(method("POST"))
        .and(path("/2/tweets"))
        .respond_with(move |_: &Request| {
            if c1.fetch_add(1, Ordering::SeqCst) == 0 {
                a1.notify_one();
                tweet("1").set_delay(std::time::Duration::from_secs(3600))
            } else {
                x_forbidden("You are not allowed to create a Tweet with duplicate content.")
            }
        })
        .expect(2)
        .mount(&m)
        .await;
    let t = app(x_yaml(&m)).await;
    declare(&t, "Some users cannot log in.").await;
    kill_mid_send(&t, "xcom", arrived).await;
    t.dispatch_all().await;
    let d = &deliveries_of(&t, "xcom").await[0];
    assert_eq!((d.state.as_str(), d.attempts), ("delivered", 2));
    t.finish().await;
}

#[tokio::test]
async fn x_replies_in_the_thread_with_a_correction() {
    let m = MockServer::start().await;
    let n = AtomicUsize::new(0);
    Mock::given(method("POST"))
        .and(path("/2/tweets"))
        .and(header("content-type", "application/json"))
        .respond_with(move |_: &Request| {
            tweet(&format!(
                "19000000000000000{}",
                n.fetch_add(1, Ordering::SeqCst)
            ))
        })
        .expect(2)
        .mount(&m)
        .await;
    let t = app(x_yaml(&m)).await;
    let id = declare(&t, "Sign-ins fail in the US region.").await;
    t.dispatch_all().await;
    let update_id = t.incident(id).await["updates"][0]["id"].as_i64().unwrap();
    let r = t
        .post(
            &format!("/api/v1/incidents/{id}/updates/{update_id}/corrections"),
            &json!({ "message": "Sign-ins fail in the EU region.", "reason": "wrong region" }),
        )
        .await;
    assert_eq!(r.status(), 201);
    t.dispatch_all().await;
    let reqs = requests_to(&m, "/2/tweets").await;
    assert_eq!(reqs.len(), 2);
    assert_oauth_signed(&reqs[1]);
    let reply = json_of(&reqs[1]);
    assert_eq!(
        reply["reply"],
        json!({ "in_reply_to_tweet_id": "190000000000000000" })
    );
    let text = reply["text"].as_str().unwrap();
    assert!(
        text.contains("It now reads: \"Sign-ins fail in the EU region.\"")
            && text.contains("Why: wrong region"),
        "{text}"
    );
    t.finish().await;
}
