//! Test logs: `TEST_LOG` and the per-thread capture tests read.

#![allow(dead_code)]

use std::sync::Arc;

/// Installs, once per test binary, the global log subscriber: with `TEST_LOG` set (`debug`, or
/// any `RUST_LOG`-style filter; `1` means `debug`) it writes through the test harness, which
/// shows a test's logs when it fails; and it feeds `capture_logs()`. Called by `spawn_app`.
///
/// One global subscriber rather than a per-test (thread-scoped) one: tracing caches, per call
/// site, whether anyone listens, and a scoped subscriber set while other test threads meet a
/// call site for the first time can miss it. This one says "ask me every time" for the
/// capture, so a test's capture never depends on what other tests did first.
pub fn init_test_log() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let filter = match std::env::var("TEST_LOG") {
            Ok(v) if matches!(v.trim(), "1" | "true" | "yes") => Some("debug".to_string()),
            Ok(v) if !v.trim().is_empty() && v.trim() != "0" => Some(v),
            _ => None,
        };
        let test_log = filter.map(|filter| {
            let env = tracing_subscriber::EnvFilter::try_new(&filter)
                .unwrap_or_else(|e| panic!("TEST_LOG={filter:?} is not a log filter: {e}"));
            tracing_subscriber::fmt::layer()
                .with_test_writer()
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
                .with_filter(env)
        });
        let capture = tracing_subscriber::fmt::layer()
            .with_writer(|| CaptureWriter)
            .with_ansi(false)
            // A line as each span opens: written on the thread that opens it (the test's), where
            // a span's close can happen on whatever thread drops it last (a blocking pool's).
            .with_span_events(tracing_subscriber::fmt::format::FmtSpan::NEW)
            .with_filter(
                // Asked at every event (the callsite answer is "sometimes", never cached as
                // "always" or "never"): only a thread with a capture records anything.
                tracing_subscriber::filter::DynFilterFn::new(|meta, _| {
                    CAPTURE.with(|c| c.borrow().is_some())
                        && meta.target().starts_with("candor")
                        && *meta.level() <= tracing::Level::INFO
                })
                .with_callsite_filter(|meta| {
                    if meta.target().starts_with("candor") && *meta.level() <= tracing::Level::INFO
                    {
                        tracing::subscriber::Interest::sometimes()
                    } else {
                        tracing::subscriber::Interest::never()
                    }
                }),
            );
        let _ = tracing_subscriber::registry()
            .with(test_log)
            .with(capture)
            .try_init();
    });
}

thread_local! {
    static CAPTURE: std::cell::RefCell<Option<Arc<std::sync::Mutex<Vec<u8>>>>> =
        const { std::cell::RefCell::new(None) };
}

/// Writes into the capture of the thread the event happens on, if it has one.
struct CaptureWriter;

impl std::io::Write for CaptureWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        CAPTURE.with(|c| {
            if let Some(b) = c.borrow().as_ref() {
                b.lock().unwrap().extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The app's log lines at info and above, with a line as each span opens, from this test's
/// thread (a `#[tokio::test]` polls every task, the app's server and workers too, on it).
pub struct CapturedLogs(Arc<std::sync::Mutex<Vec<u8>>>);

impl CapturedLogs {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Drop for CapturedLogs {
    fn drop(&mut self) {
        CAPTURE.with(|c| *c.borrow_mut() = None);
    }
}

/// Starts capturing this thread's log lines (see `CapturedLogs`).
pub fn capture_logs() -> CapturedLogs {
    init_test_log();
    let buf = Arc::new(std::sync::Mutex::new(Vec::new()));
    CAPTURE.with(|c| *c.borrow_mut() = Some(buf.clone()));
    // A call site met before the subscriber was installed is cached as "nobody listens"; ask
    // every call site again.
    tracing::callsite::rebuild_interest_cache();
    CapturedLogs(buf)
}
