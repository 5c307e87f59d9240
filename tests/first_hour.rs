//! The documented first hour, on a clean temporary folder, with the built binary: `candor init`
//! with flags, `serve`, the printed addresses answer, the printed token declares an incident, and
//! the first admin signs in to the console.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const PASSWORD: &str = "correct horse battery staple";

/// The binary, with nothing from the caller's environment choosing its config or database.
fn candor(dir: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_candor"));
    c.current_dir(dir)
        .env_remove("CANDOR_CONFIG")
        .env_remove("DATABASE_URL")
        .env_remove("CANDOR_LISTEN")
        .env_remove("CANDOR_ROLE")
        .env("CANDOR_LOG_FORMAT", "text")
        .env("USER", "first-hour");
    c
}

/// Kills the server when the test ends, passed or not.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_first_hour_from_init_to_a_declared_incident_and_a_signed_in_admin() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("password"), format!("{PASSWORD}\n")).unwrap();

    // 1. init, flags only.
    let out = candor(tmp.path())
        .args([
            "init",
            "--dir",
            "site",
            "--site-name",
            "Acme Status",
            "--time-zone",
            "Europe/London",
            "--admin-email",
            "Ops@Acme.test",
            "--admin-password-file",
            "password",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "init failed: {stdout}\n{stderr}");
    let config = tmp.path().join("site/candor.yaml").canonicalize().unwrap();
    assert!(
        stdout.contains(&format!("candor --config {} serve", config.display())),
        "{stdout}"
    );
    let token = stdout
        .lines()
        .find(|l| l.starts_with("candor_"))
        .unwrap_or_else(|| panic!("no token printed: {stdout}"))
        .trim()
        .to_string();
    assert_eq!(
        stdout.matches(&token).count(),
        1,
        "the token is printed once"
    );
    assert!(!stdout.contains(PASSWORD) && !stderr.contains(PASSWORD));

    // A second init refuses to replace the file.
    let again = candor(tmp.path())
        .args(["init", "--dir", "site", "--site-name", "X"])
        .args([
            "--admin-email",
            "a@acme.test",
            "--admin-password-file",
            "password",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));

    // 2. serve, on a port the system picks; the addresses come on stderr.
    let mut child = candor(tmp.path())
        .arg("--config")
        .arg(&config)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let _server = Server(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut urls = std::collections::BTreeMap::new();
    let mut seen = Vec::new();
    while !urls.contains_key("readiness") {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("serve printed no addresses: {seen:#?}"));
        if let Some((name, url)) = line.trim().rsplit_once(' ') {
            if url.starts_with("http://") {
                urls.insert(name.trim().to_string(), url.to_string());
            }
        }
        seen.push(line);
    }
    let page = urls["status page"].clone();
    for name in ["status page", "console", "API docs", "metrics", "readiness"] {
        assert!(urls.contains_key(name), "{name} not printed: {seen:#?}");
    }

    let http = reqwest::Client::new();
    // The workers start just after the listener: readiness may take a moment.
    let mut ready = false;
    for _ in 0..200 {
        let r = http.get(&urls["readiness"]).send().await.unwrap();
        if r.status() == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "/readyz never answered 200");
    for name in ["status page", "console", "API docs", "metrics"] {
        let r = http.get(&urls[name]).send().await.unwrap();
        assert_eq!(r.status(), 200, "{name} at {}", urls[name]);
        if name == "status page" {
            assert!(r.text().await.unwrap().contains("Acme Status"));
        }
    }

    // 3. The printed token declares an incident.
    let r = http
        .post(format!("{page}api/v1/incidents"))
        .bearer_auth(&token)
        .json(&serde_json::json!({
            "title": "Testing Candor",
            "impact": "minor",
            "status": "investigating",
            "message": "A test of our status page.",
            "components": { "api": "degraded_performance" },
            "eta_in": "30m"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());

    // 4. The first admin signs in (the address is kept lower-case).
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = browser
        .get(format!("{page}admin/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let marker = "name=\"csrf\" value=\"";
    let rest = &login[login.find(marker).expect("a CSRF field") + marker.len()..];
    let csrf = &rest[..rest.find('"').unwrap()];
    let r = browser
        .post(format!("{page}admin/login"))
        .form(&[
            ("email", "ops@acme.test"),
            ("password", PASSWORD),
            ("csrf", csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    let dashboard = browser.get(format!("{page}admin")).send().await.unwrap();
    assert_eq!(dashboard.status(), 200);
    assert!(dashboard.text().await.unwrap().contains("Testing Candor"));
}
