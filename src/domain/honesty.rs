//! The honesty check before an update goes out: words that play down a major or critical
//! incident, an update that says nothing the previous one did not, and words repeated from an
//! earlier message. It warns; it never refuses (the team may have good reasons). Pure.

use serde::Serialize;

use super::wording::normalise;
use super::Impact;

/// How alike (Sørensen–Dice over character pairs, 0 to 1) two updates' words must be to count
/// as saying the same thing again.
pub const NEAR_IDENTICAL: f64 = 0.8;

/// The phrases that play an incident down, when config gives none.
pub const DEFAULT_MINIMISING: &[&str] =
    &["some users may", "minor", "intermittent", "a small number"];

/// One thing worth a second look before publishing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Warning {
    /// `minimising`, `nothing_new` or `repeats_earlier`.
    #[schema(value_type = String, pattern = "^(minimising|nothing_new|repeats_earlier)$")]
    pub code: &'static str,
    /// What was found, in a sentence for the person writing.
    pub message: String,
}

/// The update about to be published.
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal<'a> {
    /// The impact the incident will have after the update.
    pub impact: Impact,
    pub message: &'a str,
    /// Whether the update changes a fact (status, impact, components, estimate).
    pub new_facts: bool,
}

/// Where `phrase` occurs in `text` as whole words (both already lower-case).
fn contains_words(text: &str, phrase: &str) -> bool {
    let phrase = phrase.trim();
    if phrase.is_empty() {
        return false;
    }
    text.match_indices(phrase).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + phrase.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

/// The warnings for `p`, given the previous update's words, every earlier message of the
/// incident (automatic ones too), and the phrases that play an incident down.
pub fn check(
    p: &Proposal<'_>,
    previous: Option<&str>,
    earlier: &[&str],
    minimising: &[String],
) -> Vec<Warning> {
    let mut out = Vec::new();
    if p.impact >= Impact::Major {
        let lower = p
            .message
            .to_lowercase()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let found: Vec<&str> = minimising
            .iter()
            .map(|w| w.trim())
            .filter(|w| contains_words(&lower, &w.to_lowercase()))
            .collect();
        if !found.is_empty() {
            out.push(Warning {
                code: "minimising",
                message: format!(
                    "This is a {} incident, but the words play it down (\"{}\"): customers who \
                     are badly hit will read that as not being believed.",
                    p.impact,
                    found.join("\", \"")
                ),
            });
        }
    }
    let mine = normalise(p.message);
    if let Some(prev) = previous {
        let alike = strsim::sorensen_dice(&mine, &normalise(prev));
        if !p.new_facts && alike >= NEAR_IDENTICAL {
            out.push(Warning {
                code: "nothing_new",
                message: "This says nothing the previous update did not: no fact changes and \
                          the words are nearly the same. Say what was tried, what was learnt, or \
                          what happens next."
                    .into(),
            });
        }
    }
    if !mine.is_empty() && earlier.iter().any(|e| normalise(e) == mine) {
        out.push(Warning {
            code: "repeats_earlier",
            message: "These words repeat an earlier message of this incident word for word.".into(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words() -> Vec<String> {
        DEFAULT_MINIMISING.iter().map(|s| s.to_string()).collect()
    }

    fn codes(w: &[Warning]) -> Vec<&str> {
        w.iter().map(|w| w.code).collect()
    }

    #[test]
    fn playing_down_a_major_incident_is_flagged_a_minor_one_is_not() {
        let p = Proposal {
            impact: Impact::Major,
            message: "Some users may see intermittent errors.",
            new_facts: true,
        };
        let w = check(&p, None, &[], &words());
        assert_eq!(codes(&w), ["minimising"]);
        assert!(
            w[0].message
                .contains("\"some users may\", \"intermittent\""),
            "{}",
            w[0].message
        );
        let minor = Proposal {
            impact: Impact::Minor,
            ..p.clone()
        };
        assert!(check(&minor, None, &[], &words()).is_empty());
        // Whole words only: "minority" is not "minor".
        let p = Proposal {
            impact: Impact::Critical,
            message: "A minority of regions are fine.",
            new_facts: true,
        };
        assert!(check(&p, None, &[], &words()).is_empty());
    }

    #[test]
    fn the_same_words_with_no_new_facts_say_nothing_new() {
        let prev = "We are still investigating the database errors.";
        let p = Proposal {
            impact: Impact::Minor,
            message: "We are still investigating the database errors!",
            new_facts: false,
        };
        assert_eq!(codes(&check(&p, Some(prev), &[], &[])), ["nothing_new"]);
        // With a new fact (say, a new status) it says something new.
        let p = Proposal {
            new_facts: true,
            ..p
        };
        assert!(check(&p, Some(prev), &[], &[]).is_empty());
        // Different words: fine.
        let p = Proposal {
            impact: Impact::Minor,
            message: "The failover finished; error rates are falling.",
            new_facts: false,
        };
        assert!(check(&p, Some(prev), &[], &[]).is_empty());
    }

    #[test]
    fn repeating_an_earlier_message_is_flagged() {
        let first = "Payments fail. We're on it.";
        let p = Proposal {
            impact: Impact::Minor,
            message: "payments fail.   We're on it.",
            new_facts: true,
        };
        let w = check(&p, Some("Something else entirely."), &[first, "x"], &[]);
        assert_eq!(codes(&w), ["repeats_earlier"]);
    }
}
