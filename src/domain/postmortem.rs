//! Postmortems: Markdown rendered with `pulldown-cmark` and sanitised with `ammonia` (no script,
//! no event handler, no style, no image, links made safe), and whether an action item is overdue, as a
//! pure function of `now`.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

use super::{check_text, Invalid};

/// The longest postmortem, in characters.
pub const MAX_BODY: usize = 50_000;

/// The postmortem's Markdown as safe HTML: rendered, then cleaned by ammonia's allow-list
/// (scripts, `on*` attributes, `javascript:` links, styles and iframes are removed; links get
/// `rel="noopener noreferrer"`).
pub fn render(markdown: &str) -> String {
    use pulldown_cmark::{html, Options, Parser};
    let mut opts = Options::empty();
    opts.insert(Options::ENABLE_TABLES);
    opts.insert(Options::ENABLE_STRIKETHROUGH);
    opts.insert(Options::ENABLE_TASKLISTS);
    let mut out = String::with_capacity(markdown.len() * 2);
    html::push_html(&mut out, Parser::new_ext(markdown, opts));
    // Images are left out as well: the pages' CSP would not load another site's, and a raw
    // `<img>` without `alt` is invalid HTML and says nothing to a screen reader.
    ammonia::Builder::default()
        .rm_tags(["img"])
        .clean(&out)
        .to_string()
}

/// The checked Markdown of a postmortem.
pub fn check_body(body: &str) -> Result<String, Invalid> {
    check_text("body", body, MAX_BODY)
}

/// An action item as it is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAction {
    pub text: String,
    pub owner: String,
    pub due_on: NaiveDate,
}

/// Checks an action item's fields (the due date as `YYYY-MM-DD`).
pub fn check_action(text: &str, owner: &str, due_on: &str) -> Result<NewAction, Invalid> {
    let text = check_text("text", text, 500)?;
    let owner = check_text("owner", owner, 200)?;
    let due_on = NaiveDate::parse_from_str(due_on.trim(), "%Y-%m-%d").map_err(|_| {
        Invalid::new(
            "due_on",
            format!(
                "`{}` is not a date such as 2026-12-31",
                crate::channels::truncate(due_on, 20)
            ),
        )
    })?;
    Ok(NewAction {
        text,
        owner,
        due_on,
    })
}

/// Whether an action item is overdue at `now`: not marked done and its due day (in the site's
/// zone) has ended.
pub fn overdue(due_on: NaiveDate, done: bool, now: DateTime<Utc>, tz: Tz) -> bool {
    !done && now.with_timezone(&tz).date_naive() > due_on
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn injected_scripts_and_handlers_are_stripped() {
        let md = "# What happened\n\nA **bad** deploy.<script>alert('x')</script>\n\n\
                  <img src=x onerror=\"alert(1)\"> [click](javascript:alert(2)) \
                  <a href=\"https://example.com\" onclick=\"steal()\">docs</a>\n\n\
                  <iframe src=\"https://evil.test\"></iframe><style>body{display:none}</style>\n\n\
                  | a | b |\n|---|---|\n| 1 | 2 |\n";
        let html = render(md);
        assert!(html.contains("<h1>What happened</h1>"), "{html}");
        assert!(html.contains("<strong>bad</strong>"), "{html}");
        assert!(html.contains("<table>"), "{html}");
        for bad in [
            "<script",
            "alert('x')",
            "onerror",
            "javascript:",
            "onclick",
            "<iframe",
            "<style",
        ] {
            assert!(!html.contains(bad), "{bad} survived: {html}");
        }
        assert!(html.contains("href=\"https://example.com\""), "{html}");
        assert!(html.contains("rel=\"noopener noreferrer\""), "{html}");
    }

    #[test]
    fn an_action_is_overdue_once_its_day_has_ended_unmarked() {
        let due = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
        let tz: Tz = "America/New_York".parse().unwrap();
        let on_the_day = Utc.with_ymd_and_hms(2026, 12, 1, 4, 0, 0).unwrap(); // 23:00 NY, 30 Nov
        let next_day = Utc.with_ymd_and_hms(2026, 12, 1, 6, 0, 0).unwrap(); // 01:00 NY, 1 Dec
        assert!(!overdue(due, false, on_the_day, tz));
        assert!(overdue(due, false, next_day, tz));
        assert!(!overdue(due, true, next_day, tz), "done is never overdue");
        assert!(overdue(due, false, on_the_day, chrono_tz::UTC));
    }

    #[test]
    fn action_fields_name_what_is_wrong() {
        assert_eq!(
            check_action("x", "ann", "31/12/2026").unwrap_err().field,
            "due_on"
        );
        assert_eq!(
            check_action(" ", "ann", "2026-12-31").unwrap_err().field,
            "text"
        );
        assert_eq!(
            check_action("Add an alert", "ann", "2026-12-31")
                .unwrap()
                .due_on,
            NaiveDate::from_ymd_opt(2026, 12, 31).unwrap()
        );
    }
}
