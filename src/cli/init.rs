//! `candor init`: the first hour in one command. Writes a commented config file (the shipped
//! `config/candor.yaml` with the answers filled in), creates the database, the first admin
//! operator and an API token (one transaction, audited under the system user), and prints the
//! token once and the next three commands.
//!
//! Every answer can be given as a flag, so it runs unattended; on a terminal, missing ones are
//! asked for. Nothing is written until every answer has been checked, and an existing config file
//! is only replaced with `--force`.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{DateTime, Utc};

use super::actor;
use crate::commands::operators::{check_email, NewOperator};
use crate::commands::{self, Unit};
use crate::config::{Config, Overrides};
use crate::domain::Invalid;
use crate::store::{operators, Db};
use crate::{Clock, SystemClock};

/// The shipped config, every key commented: what `init` fills in.
const SHIPPED: &str = include_str!("../../config/candor.yaml");

#[derive(clap::Args)]
pub struct InitArgs {
    /// The status page's name, shown on every page (e.g. "Acme Status"). Asked for on a
    /// terminal when left out.
    #[arg(long)]
    site_name: Option<String>,
    /// Where customers will reach the page (e.g. https://status.example.com). Left out, it
    /// follows the listen address.
    #[arg(long)]
    public_url: Option<String>,
    /// IANA time zone for times in messages (e.g. Europe/London) [default: UTC].
    #[arg(long)]
    time_zone: Option<String>,
    /// How customers reach a human: an email address or URL [default: the admin's email].
    #[arg(long)]
    support_contact: Option<String>,
    /// The first admin operator's email; they sign in at /admin with it. Asked for on a
    /// terminal when left out.
    #[arg(long)]
    admin_email: Option<String>,
    /// A file holding the first admin's password (its first line; `-` reads standard input).
    /// Left out, the password is asked for on the terminal, without echo.
    #[arg(long)]
    admin_password_file: Option<PathBuf>,
    /// Folder for the config file (candor.yaml) and the SQLite database (candor.db), created if
    /// missing [default: the current folder]. `--config` names the file instead.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Address the server will listen on (written as server.listen) [default: 127.0.0.1:8080].
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Replace an existing config file (an existing database is kept: the admin's password is
    /// reset and a new token is added).
    #[arg(long)]
    force: bool,
}

/// The checked answers.
struct Answers {
    site_name: String,
    public_url: Option<url::Url>,
    time_zone: String,
    support_contact: String,
    listen: Option<SocketAddr>,
    database_url: String,
    /// What the file says for `database.url` (a PostgreSQL URL holds a password: the file
    /// names the environment variable instead).
    database_in_file: String,
}

pub(super) async fn run(
    args: InitArgs,
    config: Option<PathBuf>,
    database_url: Option<String>,
) -> anyhow::Result<()> {
    let path = match (&args.dir, config) {
        (Some(dir), _) => dir.join("candor.yaml"),
        (None, Some(file)) => file,
        (None, None) => PathBuf::from("candor.yaml"),
    };
    if path.exists() && !args.force {
        anyhow::bail!(
            "{} already exists; pass --force to replace it (its database is kept), or choose \
             another place with --dir or --config",
            path.display()
        );
    }
    let folder = match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(p) => p.to_path_buf(),
        None => PathBuf::from("."),
    };
    std::fs::create_dir_all(&folder)
        .with_context(|| format!("cannot create the folder {}", folder.display()))?;
    let folder = std::fs::canonicalize(&folder)
        .with_context(|| format!("cannot resolve the folder {}", folder.display()))?;
    let path = folder.join(path.file_name().context("--config must name a file")?);

    let site_name = required(args.site_name, "--site-name", "Status page name")?;
    let site_name = site_name.trim().to_string();
    anyhow::ensure!(!site_name.is_empty(), "--site-name must not be empty");
    let public_url = match args.public_url.filter(|u| !u.trim().is_empty()) {
        None => None,
        Some(raw) => Some(check_public_url(raw.trim())?),
    };
    let time_zone = args.time_zone.unwrap_or_else(|| "UTC".into());
    let time_zone = time_zone.trim().to_string();
    time_zone.parse::<chrono_tz::Tz>().map_err(|_| {
        anyhow::anyhow!(
            "--time-zone: `{time_zone}` is not an IANA time zone name; write it like `UTC` or \
             `Europe/London`"
        )
    })?;
    let email = required(args.admin_email, "--admin-email", "Admin email")?;
    let email = check_email(&email).map_err(flag)?;
    let support_contact = args.support_contact.unwrap_or_else(|| email.clone());
    let (database_url, database_in_file) = match database_url {
        Some(url) if url.starts_with("sqlite:") => (url.clone(), url),
        Some(url) => (url, "${DATABASE_URL}".to_string()),
        None => {
            let url = format!("sqlite://{}", folder.join("candor.db").display());
            (url.clone(), url)
        }
    };
    let answers = Answers {
        site_name,
        public_url,
        time_zone,
        support_contact,
        listen: args.listen,
        database_url,
        database_in_file,
    };
    let now = SystemClock.now();
    let text = render(&answers, now);
    // The file must load as `serve` will load it.
    let env = |name: &str| {
        (name == "DATABASE_URL")
            .then(|| answers.database_url.clone())
            .or_else(|| std::env::var(name).ok())
    };
    let config = Config::from_yaml_with_env(&text, &Overrides::default(), &env)
        .context("the config file to be written does not load (please report this)")?;

    let password = read_password(args.admin_password_file.as_deref())?;
    let new = tokio::task::spawn_blocking(move || {
        NewOperator::new(&email, operators::Role::Admin, &password)
    })
    .await?
    .map_err(flag)?;

    let db = Db::connect(&answers.database_url, 2)
        .await
        .context("cannot open the database")?;
    db.migrate().await.context("migration failed")?;
    let token_name = format!("init-{}", now.format("%Y%m%d-%H%M%S"));
    let mut unit = Unit::begin(&db, None).await?;
    commands::operators::add(unit.tx(), &actor(), &new, now).await?;
    let scopes = crate::store::tokens::Scope::defaults();
    let token = commands::tokens::create(unit.tx(), &actor(), &token_name, &scopes, now).await?;
    unit.commit().await?;
    db.close().await;
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;

    print!(
        "{}",
        next_steps(&path, &config, new.email(), &token_name, &token)
    );
    Ok(())
}

/// What `init` prints once everything is written.
fn next_steps(path: &Path, config: &Config, email: &str, token_name: &str, token: &str) -> String {
    let base = &config.site.public_url;
    // Port 0 (`--listen 127.0.0.1:0`): the system picks the port when `serve` starts.
    let at = |p: &str| match base.port() {
        Some(0) => format!("<the address serve prints>/{p}"),
        _ => base.join(p).map(String::from).unwrap_or_default(),
    };
    let path = path.display();
    format!(
        "Wrote {path} (every setting is explained in it).\n\
         Created the database, the admin operator {email} and the API token `{token_name}`.\n\
         The token is shown only this once; store it now:\n\
         {token}\n\
         \n\
         Next:\n\
         1. Start the server:\n\
         \x20    candor --config {path} serve\n\
         2. Open the console and sign in as {email}:\n\
         \x20    {console}\n\
         3. Declare a test incident from a script (CANDOR_TOKEN set to the token above):\n\
         \x20    curl -sS -X POST {api} -H \"Authorization: Bearer $CANDOR_TOKEN\" \
         -H 'Content-Type: application/json' -d '{{\"title\": \"Testing Candor\", \
         \"impact\": \"minor\", \"status\": \"investigating\", \"message\": \"A test of our \
         status page.\", \"components\": {{\"api\": \"degraded_performance\"}}, \"eta_in\": \
         \"30m\"}}'\n",
        console = at("admin"),
        api = at("api/v1/incidents"),
    )
}

/// The shipped config with the answers in place of the demo's values.
fn render(a: &Answers, now: DateTime<Utc>) -> String {
    let mut text = format!(
        "# Written by `candor init` on {}, from the shipped example: every key is\n\
         # described where it stands.\n",
        now.format("%Y-%m-%d %H:%M UTC")
    );
    text += SHIPPED;
    let set = |text: &mut String, old: &str, new: String| {
        debug_assert!(text.contains(old), "the shipped config has `{old}`");
        *text = text.replacen(old, &new, 1);
    };
    set(
        &mut text,
        "  name: \"Candor Demo\"\n",
        format!("  name: {}\n", quote(&a.site_name)),
    );
    if let Some(url) = &a.public_url {
        set(
            &mut text,
            "  # public_url: \"https://status.example.com\"\n",
            format!("  public_url: {}\n", quote(url.as_str())),
        );
    }
    set(
        &mut text,
        "  time_zone: \"UTC\"\n",
        format!("  time_zone: {}\n", quote(&a.time_zone)),
    );
    set(
        &mut text,
        "  support_contact: \"support@example.com\"\n",
        format!("  support_contact: {}\n", quote(&a.support_contact)),
    );
    set(
        &mut text,
        "  footer_links:\n    - { label: \"Example home\", url: \"https://example.com\" }\n",
        "  footer_links: []\n  # footer_links:\n  #   - { label: \"Home\", url: \"https://example.com\" }\n"
            .to_string(),
    );
    if let Some(listen) = a.listen {
        set(
            &mut text,
            "  listen: \"127.0.0.1:8080\"\n",
            format!("  listen: \"{listen}\"\n"),
        );
    }
    set(
        &mut text,
        "  url: \"sqlite://data/candor.db\"\n",
        format!("  url: {}\n", quote(&a.database_in_file)),
    );
    text
}

/// A YAML double-quoted string (JSON's syntax is YAML's), with `$` doubled so the config's
/// `${VAR}` interpolation leaves it alone. A PostgreSQL URL given as `${DATABASE_URL}` keeps its
/// reference.
fn quote(s: &str) -> String {
    let escaped = if s == "${DATABASE_URL}" {
        s.to_string()
    } else {
        s.replace('$', "$$")
    };
    serde_json::to_string(&escaped).expect("a string serialises")
}

fn check_public_url(raw: &str) -> anyhow::Result<url::Url> {
    let url = url::Url::parse(raw).map_err(|e| {
        anyhow::anyhow!(
            "--public-url: `{raw}` is not an absolute URL ({e}); write it like \
             `https://status.example.com`"
        )
    })?;
    anyhow::ensure!(
        matches!(url.scheme(), "http" | "https"),
        "--public-url: `{raw}` must be an http or https URL"
    );
    Ok(url)
}

/// A value given as a flag, else asked for on a terminal.
fn required(value: Option<String>, flag: &str, question: &str) -> anyhow::Result<String> {
    if let Some(v) = value {
        return Ok(v);
    }
    anyhow::ensure!(
        std::io::stdin().is_terminal(),
        "{flag} is required (there is no terminal to ask on)"
    );
    eprint!("{question}: ");
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .with_context(|| format!("cannot read {flag} from the terminal"))?;
    Ok(line.trim().to_string())
}

fn read_password(file: Option<&Path>) -> anyhow::Result<String> {
    let text = match file {
        Some(p) if p == Path::new("-") => {
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("cannot read the password from standard input")?;
            line
        }
        Some(p) => std::fs::read_to_string(p)
            .with_context(|| format!("--admin-password-file: cannot read {}", p.display()))?,
        None => {
            anyhow::ensure!(
                std::io::stdin().is_terminal(),
                "--admin-password-file is required (there is no terminal to ask for the password on)"
            );
            let first = rpassword::prompt_password("Admin password: ")?;
            let again = rpassword::prompt_password("Again: ")?;
            anyhow::ensure!(first == again, "the two passwords differ");
            return Ok(first);
        }
    };
    Ok(text.lines().next().unwrap_or("").to_string())
}

/// A refused input in the command line's words.
fn flag(i: Invalid) -> anyhow::Error {
    match i.field.as_str() {
        "password" => anyhow::anyhow!("the admin password {}", i.message),
        "email" => anyhow::anyhow!("--admin-email: {}", i.message),
        field => anyhow::anyhow!("--{field}: {}", i.message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answers() -> Answers {
        Answers {
            site_name: "Acme ${HOME} \"Status\"".into(),
            public_url: None,
            time_zone: "Europe/London".into(),
            support_contact: "help@acme.test".into(),
            listen: Some("127.0.0.1:9000".parse().unwrap()),
            database_url: "sqlite:///tmp/x/candor.db".into(),
            database_in_file: "sqlite:///tmp/x/candor.db".into(),
        }
    }

    #[test]
    fn the_written_config_loads_with_the_answers_and_keeps_its_comments() {
        let text = render(&answers(), SystemClock.now());
        assert!(text.contains("# How often an open incident gets a public update"));
        let c = Config::from_yaml_with_env(&text, &Overrides::default(), &|_| Some("/root".into()))
            .unwrap();
        assert_eq!(c.site.name, "Acme ${HOME} \"Status\"", "taken literally");
        assert_eq!(c.site.time_zone, chrono_tz::Europe::London);
        assert_eq!(c.site.support_contact, "help@acme.test");
        assert_eq!(c.server.listen.port(), 9000);
        assert!(c.site.public_url_follows_listen);
        assert_eq!(c.site.public_url.as_str(), "http://127.0.0.1:9000/");
        assert_eq!(c.database.url.expose(), "sqlite:///tmp/x/candor.db");
        assert!(c.site.footer_links.is_empty());

        let mut a = answers();
        a.public_url = Some(url::Url::parse("https://status.acme.test").unwrap());
        a.database_in_file = "${DATABASE_URL}".into();
        let text = render(&a, SystemClock.now());
        let c = Config::from_yaml_with_env(&text, &Overrides::default(), &|n| {
            (n == "DATABASE_URL").then(|| "postgres://u:p@db/candor".into())
        })
        .unwrap();
        assert_eq!(c.site.public_url.as_str(), "https://status.acme.test/");
        assert_eq!(c.database.url.expose(), "postgres://u:p@db/candor");
        assert!(!text.contains("u:p@"), "no password in the file");
    }

    #[test]
    fn the_next_steps_name_the_file_the_console_and_the_api() {
        let mut a = answers();
        a.site_name = "Acme".into();
        let text = render(&a, SystemClock.now());
        let c = Config::from_yaml_with_env(&text, &Overrides::default(), &|_| None).unwrap();
        let out = next_steps(
            Path::new("/srv/candor.yaml"),
            &c,
            "ops@acme.test",
            "init-x",
            "candor_T",
        );
        assert_eq!(out.matches("candor_T").count(), 1, "{out}");
        assert!(
            out.contains("candor --config /srv/candor.yaml serve"),
            "{out}"
        );
        assert!(out.contains("http://127.0.0.1:9000/admin"), "{out}");
        assert!(
            out.contains("POST http://127.0.0.1:9000/api/v1/incidents"),
            "{out}"
        );
        a.listen = Some("127.0.0.1:0".parse().unwrap());
        let text = render(&a, SystemClock.now());
        let c = Config::from_yaml_with_env(&text, &Overrides::default(), &|_| None).unwrap();
        let out = next_steps(
            Path::new("/srv/candor.yaml"),
            &c,
            "ops@acme.test",
            "init-x",
            "candor_T",
        );
        assert!(!out.contains(":0/"), "{out}");
    }

    #[test]
    fn bad_answers_name_their_flag() {
        let e = check_public_url("status.acme.test")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("--public-url"), "{e}");
        let e = check_public_url("ftp://acme.test").unwrap_err().to_string();
        assert!(e.contains("http or https"), "{e}");
        let e = flag(check_email("nobody").unwrap_err()).to_string();
        assert!(e.starts_with("--admin-email"), "{e}");
    }
}
