//! Text rendering with minijinja: the template environment shared by messages, the status page
//! and the console (the status page's read model and documents live in `status_page`). Templates live under `templates/` in the repository and are
//! built into the binary; a file of the same name under `site.templates_dir` overrides one.

pub mod views;

use std::path::{Component, Path, PathBuf};

use minijinja::{context, Environment, Value};
use serde::Serialize;

use crate::channels::Message;

/// The built-in templates, by name.
const BUILT_IN: &[(&str, &str)] = &[
    (
        "messages/holding.txt.j2",
        include_str!("../../templates/messages/holding.txt.j2"),
    ),
    (
        "messages/apology.txt.j2",
        include_str!("../../templates/messages/apology.txt.j2"),
    ),
    (
        "messages/maintenance.txt.j2",
        include_str!("../../templates/messages/maintenance.txt.j2"),
    ),
    (
        "messages/maintenance_overrun.txt.j2",
        include_str!("../../templates/messages/maintenance_overrun.txt.j2"),
    ),
    (
        "ops/maintenance_overrun.txt.j2",
        include_str!("../../templates/ops/maintenance_overrun.txt.j2"),
    ),
    (
        "ops/reminder.txt.j2",
        include_str!("../../templates/ops/reminder.txt.j2"),
    ),
    (
        "ops/eta_passed.txt.j2",
        include_str!("../../templates/ops/eta_passed.txt.j2"),
    ),
    (
        "ops/alert_resolved.txt.j2",
        include_str!("../../templates/ops/alert_resolved.txt.j2"),
    ),
    (
        "social/post.txt.j2",
        include_str!("../../templates/social/post.txt.j2"),
    ),
    ("layout.html", include_str!("../../templates/layout.html")),
    (
        "status/macros.html",
        include_str!("../../templates/status/macros.html"),
    ),
    (
        "status/index.html",
        include_str!("../../templates/status/index.html"),
    ),
    (
        "status/incident.html",
        include_str!("../../templates/status/incident.html"),
    ),
    (
        "status/history.html",
        include_str!("../../templates/status/history.html"),
    ),
    (
        "status/error.html",
        include_str!("../../templates/status/error.html"),
    ),
    (
        "api/docs.html",
        include_str!("../../templates/api/docs.html"),
    ),
    (
        "admin/base.html",
        include_str!("../../templates/admin/base.html"),
    ),
    (
        "admin/problem.html",
        include_str!("../../templates/admin/problem.html"),
    ),
    (
        "admin/login.html",
        include_str!("../../templates/admin/login.html"),
    ),
    (
        "admin/audit.html",
        include_str!("../../templates/admin/audit.html"),
    ),
    (
        "admin/dashboard.html",
        include_str!("../../templates/admin/dashboard.html"),
    ),
    (
        "admin/dashboard_list.html",
        include_str!("../../templates/admin/dashboard_list.html"),
    ),
    (
        "admin/macros.html",
        include_str!("../../templates/admin/macros.html"),
    ),
    (
        "admin/declare.html",
        include_str!("../../templates/admin/declare.html"),
    ),
    (
        "admin/incident.html",
        include_str!("../../templates/admin/incident.html"),
    ),
    (
        "admin/maintenance_list.html",
        include_str!("../../templates/admin/maintenance_list.html"),
    ),
    (
        "admin/maintenance_new.html",
        include_str!("../../templates/admin/maintenance_new.html"),
    ),
    (
        "admin/maintenance.html",
        include_str!("../../templates/admin/maintenance.html"),
    ),
    (
        "admin/subscribers.html",
        include_str!("../../templates/admin/subscribers.html"),
    ),
    (
        "admin/inbox.html",
        include_str!("../../templates/admin/inbox.html"),
    ),
    (
        "email/update/subject.txt.j2",
        include_str!("../../templates/email/update/subject.txt.j2"),
    ),
    (
        "email/update/body.txt.j2",
        include_str!("../../templates/email/update/body.txt.j2"),
    ),
    (
        "email/update/body.html.j2",
        include_str!("../../templates/email/update/body.html.j2"),
    ),
    (
        "email/confirm/subject.txt.j2",
        include_str!("../../templates/email/confirm/subject.txt.j2"),
    ),
    (
        "email/confirm/body.txt.j2",
        include_str!("../../templates/email/confirm/body.txt.j2"),
    ),
    (
        "email/confirm/body.html.j2",
        include_str!("../../templates/email/confirm/body.html.j2"),
    ),
    (
        "subscribe/page.html",
        include_str!("../../templates/subscribe/page.html"),
    ),
];

#[derive(Debug, thiserror::Error)]
#[error("template `{name}`: {message}")]
pub struct RenderError {
    pub name: String,
    pub message: String,
}

pub struct Renderer {
    env: Environment<'static>,
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Renderer")
    }
}

/// HTML-escapes `text` and turns its `backtick spans` into `<code>` elements (for descriptions
/// written in the OpenAPI document's Markdown).
fn code_spans(text: &str) -> Value {
    let mut out = String::with_capacity(text.len() + 16);
    for (i, part) in text.split('`').enumerate() {
        let escaped = minijinja::HtmlEscape(part).to_string();
        if i % 2 == 1 {
            out.push_str("<code>");
            out.push_str(&escaped);
            out.push_str("</code>");
        } else {
            out.push_str(&escaped);
        }
    }
    if text.matches('`').count() % 2 == 1 {
        // An unpaired backtick: show the text as it was written.
        return Value::from(text);
    }
    Value::from_safe_string(out)
}

/// An impact as people say it: "no impact", "minor impact" (never "none impact").
fn impact_words(impact: String) -> String {
    match impact.as_str() {
        "none" => "no impact".to_string(),
        other => format!("{other} impact"),
    }
}

impl Renderer {
    /// Templates from `override_dir` where present, else the built-in ones.
    pub fn new(override_dir: &Path) -> Self {
        let dir: PathBuf = override_dir.to_path_buf();
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_keep_trailing_newline(false);
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env.add_filter("code_spans", code_spans);
        env.add_filter("impact_words", impact_words);
        env.set_loader(move |name| {
            let safe = Path::new(name)
                .components()
                .all(|c| matches!(c, Component::Normal(_)));
            if !safe {
                return Ok(None);
            }
            match std::fs::read_to_string(dir.join(name)) {
                Ok(text) => return Ok(Some(text)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(minijinja::Error::new(
                        minijinja::ErrorKind::InvalidOperation,
                        format!("cannot read template override: {e}"),
                    ))
                }
            }
            Ok(BUILT_IN
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, t)| t.to_string()))
        });
        Self { env }
    }

    /// Renders template `name` with `ctx`, trimming surrounding whitespace.
    pub fn render<S: Serialize>(&self, name: &str, ctx: S) -> Result<String, RenderError> {
        let err = |e: minijinja::Error| RenderError {
            name: name.to_string(),
            message: format!("{e:#}"),
        };
        let tmpl = self.env.get_template(name).map_err(err)?;
        let out = tmpl.render(ctx).map_err(err)?;
        Ok(out.trim().to_string())
    }

    /// Renders an HTML page (auto-escaped) with its context.
    pub fn render_page(&self, name: &str, ctx: serde_json::Value) -> Result<String, RenderError> {
        let err = |e: minijinja::Error| RenderError {
            name: name.to_string(),
            message: format!("{e:#}"),
        };
        let tmpl = self.env.get_template(name).map_err(err)?;
        tmpl.render(Value::from_serialize(&ctx)).map_err(err)
    }

    /// The public text of a message, as a short post (title, words, estimate, next update, link).
    pub fn post_text(
        &self,
        msg: &Message,
        max_chars: Option<usize>,
    ) -> Result<String, RenderError> {
        self.render(
            "social/post.txt.j2",
            context! { msg => Value::from_serialize(msg), max_chars => max_chars },
        )
    }

    /// Loads and compiles every built-in template name (the override in `site.templates_dir`
    /// where there is one), so an override that does not parse fails at start rather than during
    /// an incident. It renders nothing: a template that parses but uses a value it is not given
    /// fails only when rendered (the console shows that as its "Something went wrong" page).
    pub fn check(&self) -> Result<(), RenderError> {
        for (name, _) in BUILT_IN {
            self.env.get_template(name).map_err(|e| RenderError {
                name: name.to_string(),
                message: format!("{e:#}"),
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn code_spans_escape_html_and_mark_code() {
        let v = super::code_spans("send `If-Match: \"3\"` <now>");
        assert_eq!(
            v.to_string(),
            "send <code>If-Match: &quot;3&quot;</code> &lt;now&gt;"
        );
        assert!(v.is_safe());
        let odd = super::code_spans("a ` b <i>");
        assert!(
            !odd.is_safe(),
            "an unpaired backtick leaves the text to autoescape"
        );
    }
}
