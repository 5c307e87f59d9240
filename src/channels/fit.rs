//! Fitting a post to a network's length limit, counted the way that network counts: whole
//! words are dropped from the end of the body, never the link to the incident page.

use unicode_normalization::UnicodeNormalization;
use unicode_segmentation::UnicodeSegmentation;

/// How a network counts a post's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// Extended grapheme clusters, links at full length (Bluesky).
    Graphemes,
    /// Grapheme clusters with every link counted as `url` characters (Mastodon).
    GraphemesShortLinks { url: usize },
    /// twitter-text v3 weighted length: NFC, most scripts' letters 1, CJK and emoji 2, links 23
    /// (X).
    Weighted,
    /// Unicode scalar values (Discord, Slack).
    Chars,
}

/// twitter-text v3 configuration: ranges weighing 100 (one unit); everything else weighs 200.
const LIGHT_RANGES: [(u32, u32); 4] = [(0, 4351), (8192, 8205), (8208, 8223), (8242, 8247)];
const X_URL_LENGTH: usize = 23;

/// Byte ranges of the http(s) links in `text` (whitespace-delimited tokens).
fn links(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text
        .char_indices()
        .chain(std::iter::once((text.len(), ' ')))
    {
        match (start, c.is_whitespace()) {
            (None, false) => start = Some(i),
            (Some(s), true) => {
                let tok = &text[s..i];
                if tok.starts_with("https://") || tok.starts_with("http://") {
                    out.push((s, i));
                }
                start = None;
            }
            _ => {}
        }
    }
    out
}

fn weighted(segment: &str) -> usize {
    segment
        .graphemes(true)
        .map(|g| {
            if is_emoji(g) {
                2
            } else {
                g.chars()
                    .map(|c| {
                        let cp = c as u32;
                        if LIGHT_RANGES.iter().any(|&(a, b)| (a..=b).contains(&cp)) {
                            1
                        } else {
                            2
                        }
                    })
                    .sum()
            }
        })
        .sum()
}

fn is_emoji(g: &str) -> bool {
    g.chars().any(|c| {
        let cp = c as u32;
        (0x1F000..=0x1FAFF).contains(&cp) || cp == 0xFE0F || cp == 0x200D
    })
}

impl Counter {
    /// The length of `text` in this network's unit.
    pub fn count(self, text: &str) -> usize {
        match self {
            Counter::Graphemes => text.graphemes(true).count(),
            Counter::Chars => text.chars().count(),
            Counter::GraphemesShortLinks { url } => {
                self.split_links(text, url, |s| s.graphemes(true).count())
            }
            Counter::Weighted => {
                let nfc: String = text.nfc().collect();
                self.split_links(&nfc, X_URL_LENGTH, weighted)
            }
        }
    }

    fn split_links(self, text: &str, url: usize, other: impl Fn(&str) -> usize) -> usize {
        let mut n = 0;
        let mut at = 0;
        for (s, e) in links(text) {
            n += other(&text[at..s]) + url;
            at = e;
        }
        n + other(&text[at..])
    }
}

/// `text` fitted to `limit`: as it is if it fits, else its words up to the last that fits,
/// then "…", a blank line and `link` (which `text` ends with, if it has one). The link is
/// kept whole even if it alone is longer than the limit.
pub fn fit(text: &str, link: &str, limit: usize, counter: Counter) -> String {
    let text = text.trim();
    if counter.count(text) <= limit {
        return text.to_string();
    }
    let (head, tail) = match text.rfind(link).filter(|_| !link.is_empty()) {
        Some(at) if text[at + link.len()..].trim().is_empty() => (text[..at].trim_end(), link),
        _ => (text, ""),
    };
    let compose = |cut: &str| {
        let mut s = cut.trim_end().to_string();
        if !s.is_empty() {
            s.push('…');
        }
        if !tail.is_empty() {
            if !s.is_empty() {
                s.push_str("\n\n");
            }
            s.push_str(tail);
        }
        s
    };
    // Cut points: the starts of whitespace runs, so only whole words are kept.
    let cuts: Vec<usize> = std::iter::once(0)
        .chain(
            head.split_word_bound_indices()
                .filter(|(_, w)| w.chars().all(char::is_whitespace))
                .map(|(i, _)| i),
        )
        .collect();
    // Longest first; the count only grows with the prefix, so the first fit is the best.
    for &at in cuts.iter().rev() {
        let candidate = compose(&head[..at]);
        if counter.count(&candidate) <= limit {
            return candidate;
        }
    }
    compose("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_length_follows_twitter_text() {
        assert_eq!(Counter::Weighted.count("hello"), 5);
        // CJK counts two, an emoji sequence counts two, a link counts 23.
        assert_eq!(Counter::Weighted.count("日本"), 4);
        assert_eq!(Counter::Weighted.count("👨‍👩‍👧"), 2);
        assert_eq!(
            Counter::Weighted.count("see https://status.example.com/incidents/1234567890"),
            4 + 23
        );
        // NFC first: e + combining acute is one é.
        assert_eq!(Counter::Weighted.count("e\u{301}"), 1);
    }

    #[test]
    fn mastodon_counts_links_as_23_and_graphemes_once() {
        let c = Counter::GraphemesShortLinks { url: 23 };
        assert_eq!(
            c.count("a https://x.test/very/long/path/indeed/yes"),
            2 + 23
        );
        assert_eq!(c.count("👨‍👩‍👧"), 1);
    }

    #[test]
    fn fitting_keeps_whole_words_and_the_link() {
        let link = "https://status.acme.test/incidents/7";
        let text =
            format!("Investigating: API down\n\nThe database is slow and we are on it.\n\n{link}");
        let out = fit(&text, link, 60, Counter::Graphemes);
        assert!(out.ends_with(&format!("…\n\n{link}")), "{out}");
        assert!(Counter::Graphemes.count(&out) <= 60, "{out}");
        let kept = out.trim_end_matches(link).trim_end().trim_end_matches('…');
        assert!(text.starts_with(kept), "only whole words kept: {out}");
        assert!(!kept.ends_with(' '));
        assert_eq!(kept, "Investigating: API");
        // Fits already: untouched.
        assert_eq!(fit(&text, link, 500, Counter::Graphemes), text);
        // Room for nothing but the link: the link alone.
        assert_eq!(fit(&text, link, 40, Counter::Graphemes), link);
    }

    #[test]
    fn fitting_counts_in_the_networks_unit() {
        let link = "https://status.acme.test/incidents/7";
        let body = "日本語のテキスト ".repeat(30);
        let text = format!("{body}\n\n{link}");
        let out = fit(&text, link, 280, Counter::Weighted);
        assert!(Counter::Weighted.count(&out) <= 280);
        assert!(out.ends_with(link));
        assert!(Counter::Weighted.count(&out) > 240, "uses the room it has");
    }
}
