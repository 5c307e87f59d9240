//! The audit log as people read it: names instead of raw actors, dates, readable details,
//! paging, filters and exports.

use super::*;

#[tokio::test]
async fn the_audit_log_reads_pages_filters_and_exports() {
    let t = spawn_app().await;
    add_operator(&t, "ana@acme.test", operators::Role::Responder).await;
    let id = t
        .declare(json!({ "title": "Slow API", "message": "Looking.", "impact": "minor" }))
        .await["id"]
        .as_i64()
        .unwrap();
    {
        let mut tx = t.app.db.begin_write().await.unwrap();
        for i in 0..120 {
            audit::record(
                &mut tx,
                "cli:alice",
                "demo.filler",
                None,
                &json!({ "n": i, "note": "=HYPERLINK(\"http://evil.test\")" }),
                t.clock_now(),
            )
            .await
            .unwrap();
        }
        audit::record(
            &mut tx,
            "candor",
            "demo.times",
            None,
            &json!({ "eta_at": "2026-11-23T14:00:00Z", "components": { "api": "major_outage" } }),
            t.clock_now(),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
    let b = Browser::new(&t);
    b.login("ana@acme.test").await;
    let html = b.page("/admin/audit").await;
    assert!(html.contains("alice (command line)"), "{html}");
    assert_eq!(
        html.matches("<li data-action=").count(),
        100,
        "a page of 100"
    );
    assert!(html.contains("rel=\"next\""));
    assert!(!html.contains("{&quot;"), "raw JSON on the page");
    assert!(html.contains("<dt>note</dt>"));
    // The date is on every entry (the clock starts on Mon 23 Nov 2026, 12:00 UTC).
    assert!(html.contains(">Mon 23 Nov, 12:00 UTC</time>"), "{html}");
    // The next page holds the rest, the declare among them, named after the token.
    let before_next = &html[..html.find("\" rel=\"next\"").unwrap()];
    let at = before_next.rfind("/admin/audit?").unwrap() + "/admin/audit?".len();
    let next = before_next[at..].replace("&amp;", "&");
    let older = b.page(&format!("/admin/audit?{next}")).await;
    assert!(older.contains("ci-script (API token)"), "{older}");
    assert!(older.contains("Newest entries"));
    // Filters: by who, by what, by incident.
    let by_token = b.page("/admin/audit?actor=token%3Aci-script").await;
    assert!(!by_token.contains("data-action=\"demo.filler\""));
    assert!(by_token.contains("data-action=\"incident.declare\""));
    let by_incident = b.page(&format!("/admin/audit?incident={id}")).await;
    assert!(by_incident.contains("data-action=\"incident.declare\""));
    assert!(!by_incident.contains("data-action=\"demo.filler\""));
    let by_action = b.page("/admin/audit?action=demo.filler").await;
    assert_eq!(
        by_action.matches("<li data-action=\"demo.filler\"").count(),
        100
    );
    // Times and maps read as people write them.
    let times = b.page("/admin/audit?action=demo.times").await;
    assert!(times.contains("Candor (scheduler)"));
    assert!(
        times.contains("<dt>eta at</dt><dd class=\"wrap-anywhere\">Mon 23 Nov, 14:00 UTC</dd>"),
        "{times}"
    );
    assert!(times.contains("api: major outage"), "{times}");
    let bad = b.get("/admin/audit?incident=twelve").await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert!(bad
        .text()
        .await
        .unwrap()
        .contains("Incident: “twelve” is not a number"));
    // Exports carry every matching entry, formulas neutralised in CSV.
    let csv = b.get("/admin/audit.csv?action=demo.filler").await;
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(csv.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("candor-audit.csv"));
    let text = csv.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 120);
    assert_eq!(&rows[0][3], "alice (command line)");
    assert!(!rows.iter().any(|r| r[6].starts_with('=')));
    let json_export: Value = b
        .get(&format!("/admin/audit.json?incident={id}"))
        .await
        .json()
        .await
        .unwrap();
    let entries = json_export.as_array().unwrap();
    assert!(entries.iter().all(|e| e["incident_id"] == id));
    assert!(entries.iter().any(|e| e["who"] == "ci-script (API token)"));
    t.dispatch_all().await;
    t.finish().await;
}
