//! `incident` and `maintenance` commands talk to a running server: one API request each, with
//! exit codes a script can branch on (see [`Exit`]).

use std::process::ExitCode;

use reqwest::Method;
use serde_json::Value;

use super::client::{Client, Exit};

/// Where the server is and how to sign in, from the global options.
pub(super) struct Remote {
    pub url: String,
    pub token: Option<String>,
    /// `--json`: print the server's answer as it is.
    pub json: bool,
}

impl Remote {
    /// Sends the request `build` makes and prints the answer with `print`. Bad arguments (the
    /// URL, a malformed `--component`) exit 2; the server's refusals exit with their own codes.
    pub(super) async fn call(
        &self,
        build: impl FnOnce() -> anyhow::Result<(Method, String, Option<Value>)>,
        print: fn(&Value, bool),
    ) -> ExitCode {
        let client = match Client::new(&self.url, self.token.clone()) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e:#}");
                return ExitCode::from(2);
            }
        };
        let (method, path, payload) = match build() {
            Ok(r) => r,
            Err(e) => {
                eprintln!("error: {e:#}");
                return ExitCode::from(2);
            }
        };
        match client.call(method, &path, payload).await {
            Ok((_, value)) => {
                print(&value, self.json);
                ExitCode::from(Exit::Ok as u8)
            }
            Err(f) => {
                eprintln!("error: {}", f.message);
                ExitCode::from(f.exit as u8)
            }
        }
    }
}
