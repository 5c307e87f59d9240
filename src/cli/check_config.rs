//! `candor check-config`: the file was loaded and validated before this runs (every problem
//! names its key); this prints the one-line summary, and warnings about settings that are valid
//! but probably wrong.

use std::path::Path;

use crate::config::Config;

pub(super) fn run(path: &Path, config: &Config) {
    println!(
        "{}: OK ({} components, {} channels, database {})",
        path.display(),
        config.components.len(),
        config.channels.len(),
        if config.database.url.expose().starts_with("sqlite:") {
            "SQLite"
        } else {
            "PostgreSQL"
        }
    );
    if let Some(warning) = config.public_url_warning() {
        eprintln!("warning: {warning}");
    }
}
