//! `candor serve` as a process: the README's first run, roles, SIGTERM.

use super::*;

/// The README's first command: `serve` with the shipped config (here on a fresh database and a
/// free port), a token from `token create`, one incident declared over HTTP, its line on the
/// log channel (stdout), then a clean exit on SIGTERM.
#[tokio::test]
async fn serve_with_the_shipped_config_shows_a_declared_incident_through_the_api_and_the_log_channel(
) {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database_url(&dir).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");

    let out = candor()
        .env("DATABASE_URL", &db)
        .args(["token", "create", "--name", "readme"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let token = stdout.lines().last().unwrap().trim().to_string();
    assert!(
        token.starts_with("candor_"),
        "token on the last line: {stdout}"
    );

    let mut child = KillOnDrop(Some(
        candor()
            .env("DATABASE_URL", &db)
            .args(["serve", "--listen", &listen])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.path().join("serve.log")).unwrap())
            .spawn()
            .unwrap(),
    ));
    let stdout = child.get().stdout.take().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });

    let http = reqwest::Client::new();
    let base = format!("http://{listen}");
    // Wait (bounded) for the server to answer.
    let mut up = false;
    for _ in 0..100 {
        if http
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "server did not become ready");

    let r = http
        .post(format!("{base}/api/v1/incidents"))
        .bearer_auth(&token)
        .json(&json!({ "title": "Website down", "impact": "critical", "message": "The site returns 503.",
                       "components": { "web": "major_outage" }, "eta_in": "30m" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();

    let line = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(l) = rx.recv().await {
            let v: Value = serde_json::from_str(&l).unwrap();
            if v["channel"] == "log" && v["incident_id"] == id {
                return v;
            }
        }
        panic!("stdout closed");
    })
    .await
    .expect("the log channel printed the incident");
    assert_eq!(line["kind"], "operator");
    assert!(line["text"]
        .as_str()
        .unwrap()
        .starts_with("Investigating: Website down"));

    // The line is written before the outcome is recorded; wait (bounded) for the record.
    let mut state = Value::Null;
    for _ in 0..100 {
        let shown: Value = http
            .get(format!("{base}/api/v1/incidents/{id}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        state = shown["updates"][0]["deliveries"][0]["state"].clone();
        if state == "delivered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state, "delivered");

    // The status page shows it too (rebuilt after the commit, well within a second).
    let mut page = String::new();
    for _ in 0..100 {
        page = http
            .get(format!("{base}/"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if page.contains("Website down") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        page.contains("Website down") && page.contains("Major Service Outage"),
        "{page}"
    );

    // SIGTERM: a clean, prompt exit.
    let pid = child.get().id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let mut child = child.0.take().unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exit status {status}");
    // Logs written to a file (as systemd or a redirect would) are plain text, no colour codes.
    let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
    assert!(log.contains("candor is serving"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "terminal colour codes in a log file: {log:?}"
    );
    outbox_settles(&db).await;
}

/// The outbox check of a test that runs `candor serve` itself: waits (bounded) until the server
/// has recorded what it sent (a real process records the outcome just after sending), then
/// fails if anything is left that a worker would still send.
async fn outbox_settles(db: &str) {
    let mut left = Vec::new();
    for _ in 0..100 {
        left = leftover_deliveries(db, candor::SystemClock.now()).await;
        if left.is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the server left deliveries it would still send:\n{}",
        left.join("\n")
    );
}

/// `--role web` serves pages and the API but sends nothing; `--role worker` on the same database
/// sends what the web instance queued, and answers only health checks.
#[tokio::test]
async fn web_and_worker_roles_split_the_work() {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database_url(&dir).await;
    let out = candor()
        .env("DATABASE_URL", &db)
        .args(["token", "create", "--name", "roles"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_string();
    let http = reqwest::Client::new();

    let start = |role: &str| {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = candor()
            .env("DATABASE_URL", &db)
            .args([
                "serve",
                "--role",
                role,
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        (KillOnDrop(Some(child)), format!("http://127.0.0.1:{port}"))
    };
    let ready = |base: String| {
        let http = http.clone();
        async move {
            for _ in 0..100 {
                if http
                    .get(format!("{base}/readyz"))
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200)
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("{base} did not become ready");
        }
    };

    let (_web, web) = start("web");
    ready(web.clone()).await;
    let r = http
        .post(format!("{web}/api/v1/incidents"))
        .bearer_auth(&token)
        .json(&json!({ "title": "Search is slow", "message": "Looking.", "eta_in": "1h" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();

    let (mut worker, worker_base) = start("worker");
    ready(worker_base.clone()).await;
    assert_eq!(
        http.get(format!("{worker_base}/"))
            .send()
            .await
            .unwrap()
            .status(),
        404,
        "a worker serves no pages"
    );
    let stdout = worker.get().stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find(|l| l.contains("\"channel\":\"log\""))
    });
    let line = tokio::time::timeout(Duration::from_secs(30), line)
        .await
        .expect("worker delivered")
        .unwrap()
        .unwrap();
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        v["incident_id"], id,
        "the worker sent what the web instance queued"
    );
    outbox_settles(&db).await;
}
