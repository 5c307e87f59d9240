//! Estimates the console suggests, from the seeded history of resolved incidents.

use super::*;

/// Seeds resolved major incidents: (first estimate, actual) in minutes, and components.
async fn seed(t: &TestApp, history: &[(i64, i64, &str)]) {
    for (estimate, actual, component) in history {
        let inc = t
            .declare(json!({
                "title": "Past outage", "message": "Looking.", "impact": "major",
                "eta_in": format!("{estimate}m"), "components": { *component: "major_outage" },
            }))
            .await;
        t.advance(Duration::from_secs(*actual as u64 * 60));
        let r = t
            .post(
                &format!("/api/v1/incidents/{}/resolve", inc["id"]),
                &json!({ "message": "Fixed." }),
            )
            .await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }
}

#[tokio::test]
async fn estimates_come_from_the_seeded_history() {
    let t = spawn_app().await;
    // Five on the API, each taking twice its first estimate; one on the website, quick.
    seed(
        &t,
        &[
            (15, 30, "api"),
            (30, 60, "api"),
            (45, 90, "api"),
            (60, 120, "api"),
            (120, 240, "api"),
            (20, 20, "web"),
        ],
    )
    .await;
    let r = t.get("/api/v1/estimates?impact=major&eta_in=1h").await;
    assert_eq!(r.status(), 200);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["scope"], "impact");
    assert_eq!(e["sample_size"], 6);
    assert_eq!(e["median_minutes"], 75.0);
    assert_eq!(e["p90_minutes"], 240.0);
    // Ratios 2,2,2,2,2,1: median 2.
    assert_eq!(e["median_overrun_ratio"], 2.0);
    assert_eq!(e["suggested_minutes"], 120.0);
    assert!(
        e["explanation"]
            .as_str()
            .unwrap()
            .contains("your 1 hour becomes 2 hours"),
        "{e}"
    );
    // Narrowed to the API's five.
    let e: Value = t
        .get("/api/v1/estimates?impact=major&components=api")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(e["scope"], "components");
    assert_eq!(e["sample_size"], 5);
    assert_eq!(e["median_minutes"], 90.0);
    // Too few on the website alone: falls back to every major incident.
    let e: Value = t
        .get("/api/v1/estimates?impact=major&components=web")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(e["scope"], "impact");
    // No minor history at all.
    let e: Value = t
        .get("/api/v1/estimates?impact=minor")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(e["scope"], "none");
    assert_eq!(e["median_minutes"], Value::Null);
    // Bad input names the field; the API needs its bearer token.
    let r = t.get("/api/v1/estimates?impact=huge").await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("impact"));
    let r = t
        .get("/api/v1/estimates?impact=major&components=nope")
        .await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("unknown component `nope`"));
    let r = t
        .http
        .get(t.url("/api/v1/estimates?impact=major"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // The declare form's preview step (no script) shows the same hint and each channel's text.
    add_operator(&t, "ana@acme.test", operators::Role::Responder).await;
    let b = Browser::new(&t);
    b.login("ana@acme.test").await;
    let r = b
        .submit(
            "/admin/incidents/new",
            "/admin/incidents/new",
            &[
                ("title", "Checkout errors"),
                ("impact", "major"),
                ("message", "Some payments fail."),
                ("eta_mode", "in"),
                ("eta_in", "1h"),
                ("action", "preview"),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("your 1 hour becomes 2 hours"),
        "calibration hint shown"
    );
    assert!(
        html.contains("data-channel=\"log\""),
        "the log channel's preview"
    );
    assert!(html.contains("Some payments fail."));
    // (minijinja escapes `/` in HTML as `&#x2f;`.)
    assert!(
        html.contains("incidents&#x2f;7"),
        "the preview links the incident it will be"
    );
    // Nothing was declared by previewing.
    let list: Value = t.get("/api/v1/incidents").await.json().await.unwrap();
    assert_eq!(list["incidents"].as_array().unwrap().len(), 0);
    // The script's JSON preview says the same, with lengths.
    let csrf = csrf_in(&b.page("/admin/incidents/new").await);
    let r = b
        .http
        .post(t.url("/admin/preview"))
        .header("x-csrf-token", csrf)
        .form(&[
            ("title", "Checkout errors"),
            ("impact", "major"),
            ("message", "Some payments fail."),
            ("eta_mode", "in"),
            ("eta_in", "1h"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let p: Value = r.json().await.unwrap();
    let log = &p["previews"][0];
    assert_eq!(log["channel"], "log");
    assert_eq!(
        log["length"].as_u64().unwrap() as usize,
        log["text"].as_str().unwrap().chars().count()
    );
    assert!(log["text"]
        .as_str()
        .unwrap()
        .ends_with("https://status.acme.test/incidents/7"));
    assert_eq!(p["estimates"]["suggested_minutes"], 120.0);
    t.dispatch_all().await;
    t.finish().await;
}
