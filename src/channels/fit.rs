//! Fitting a post to a network's length limit, counted the way that network counts.
//!
//! A post is made of parts (see `templates/social/post.txt.j2`): the header (status label and
//! title), the affected components, the story (the update's words), the promise (the estimate,
//! or the honest "no estimate yet", and "Next update by ...") and the link to the incident
//! page. Fitting never cuts the promise or the link: the story is shortened first, whole words
//! at a time with "…" where it was cut (the link holds the rest), then dropped; then the title;
//! then the list of components becomes a count, then goes. The template renders every
//! candidate, so what is measured is exactly what is sent.

use unicode_segmentation::UnicodeSegmentation;

use super::Message;

/// How a network counts a post's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// Extended grapheme clusters, links at full length (Bluesky).
    Graphemes,
    /// Grapheme clusters with every `http(s)://` link counted as `url` characters, links found
    /// by twitter-text's extractor as Mastodon finds them (Mastodon).
    GraphemesShortLinks { url: usize },
    /// twitter-text v3 weighted length: NFC, most scripts' letters 1, CJK and emoji 2, links 23,
    /// bare domains (`api.acme.com`) 23 or, if longer, their letters (X). See [`weighted`].
    Weighted,
    /// Unicode scalar values (Discord, Slack).
    Chars,
}

impl Counter {
    /// The length of `text` in this network's unit.
    pub fn count(self, text: &str) -> usize {
        match self {
            Counter::Graphemes => text.graphemes(true).count(),
            Counter::Chars => text.chars().count(),
            Counter::GraphemesShortLinks { url } => short_links(text, url),
            Counter::Weighted => weighted(text),
        }
    }
}

/// X's count: the larger of two readings of twitter-text v3, so a post passes both. By the
/// rules of twitter-text's Java library (what X's clients use; see [`x_rules`]) every link the
/// extractor finds, with or without a scheme (`api.acme.com`), counts 23. The `twitter-text`
/// crate's own `parse` (version 0.3.1) counts a link without a scheme by its letters, so a long
/// bare host name weighs more there. Everything else weighs the same in both: the text in NFC,
/// 1 per code point of most Latin-script text, 2 for CJK and most scripts above U+10FF, 2 for
/// an emoji sequence.
fn weighted(text: &str) -> usize {
    let config = twitter_text_config::config_v3();
    let crate_count =
        usize::try_from(twitter_text::parse(text, config, true).weighted_length).unwrap_or(0);
    crate_count.max(x_rules(text))
}

/// twitter-text v3's weighted length with every link, with or without a scheme, as 23: links
/// found by the `twitter-text` crate's extractor, the text between them weighed by its parser.
pub fn x_rules(text: &str) -> usize {
    use twitter_text::extractor::Extractor;
    use unicode_normalization::UnicodeNormalization;
    let config = twitter_text_config::config_v3();
    let nfc: String = text.nfc().collect();
    let letters = |s: &str| -> usize {
        usize::try_from(twitter_text::parse(s, config, false).weighted_length).unwrap_or(0)
    };
    let url = usize::try_from(config.transformed_url_length).unwrap_or(23);
    let extractor = Extractor::new();
    let mut n = 0;
    let mut at = 0;
    for link in extractor.extract_urls(&nfc) {
        let Some(found) = nfc[at..].find(link.as_str()) else {
            continue;
        };
        n += letters(&nfc[at..at + found]) + url;
        at += found + link.len();
    }
    n + letters(&nfc[at..])
}

/// Mastodon's count: graphemes, with each link that has a scheme replaced by `url` characters
/// (its `StatusLengthValidator` runs twitter-text's URL extraction without bare domains).
fn short_links(text: &str, url: usize) -> usize {
    use twitter_text::extractor::{Extract, Extractor};
    let mut extractor = Extractor::new();
    extractor.set_extract_url_without_protocol(false);
    let mut n = 0;
    let mut at = 0;
    for link in extractor.extract_urls(text) {
        let Some(found) = text[at..].find(link.as_str()) else {
            continue;
        };
        n += text[at..at + found].graphemes(true).count() + url;
        at += found + link.len();
    }
    n + text[at..].graphemes(true).count()
}

/// The byte offsets where `text` may be cut so that only whole words are kept: its start, and
/// the start of every run of whitespace.
fn cut_points(text: &str) -> Vec<usize> {
    let mut cuts = vec![0];
    let mut prev_space = true;
    for (i, c) in text.char_indices() {
        let space = c.is_whitespace();
        if space && !prev_space {
            cuts.push(i);
        }
        prev_space = space;
    }
    cuts
}

/// `text` cut at `at`: its words before `at` and "…", or nothing.
fn shortened(text: &str, at: usize) -> String {
    let kept = text[..at].trim_end();
    if kept.is_empty() {
        String::new()
    } else {
        format!("{kept}…")
    }
}

/// The longest cut of `text` (see [`cut_points`]) for which `fits` holds, by bisection over the
/// cut points (a longer cut never counts less, give or take what a link's end does, and only
/// cuts that were measured to fit are returned). `None` if not even the empty cut fits.
fn longest_fitting(text: &str, mut fits: impl FnMut(&str) -> bool) -> Option<String> {
    let cuts = cut_points(text);
    let candidate = |i: usize| shortened(text, cuts[i]);
    let first = candidate(0);
    if !fits(&first) {
        return None;
    }
    let (mut lo, mut hi) = (0, cuts.len());
    let mut best = first;
    // Invariant: cut `lo` fits (and is `best`); cuts from `hi` on are not known to.
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        let c = candidate(mid);
        if fits(&c) {
            lo = mid;
            best = c;
        } else {
            hi = mid;
        }
    }
    Some(best)
}

/// Why a message could not be fitted.
#[derive(Debug, thiserror::Error)]
pub enum FitError<E> {
    /// The template failed.
    #[error("{0}")]
    Render(E),
    /// Even with no story, no title and no components, the post is too long: the promise and
    /// the link alone pass the limit.
    #[error("the estimate, the next-update line and the link alone are {length} long; the limit is {limit}")]
    TooLong { length: usize, limit: usize },
}

/// `msg` as `render` writes it, fitted to `limit` as `counter` counts: unchanged if it fits;
/// else the same template over a message whose story, then title, then component list were
/// shortened, so the promise lines and the link always stay whole.
pub fn fit_message<E>(
    msg: &Message,
    limit: usize,
    counter: Counter,
    render: impl Fn(&Message) -> Result<String, E>,
) -> Result<String, FitError<E>> {
    let full = render(msg).map_err(FitError::Render)?;
    if counter.count(&full) <= limit {
        return Ok(full);
    }
    let mut err = None;
    let mut fits = |m: &Message| match render(m) {
        Ok(text) => counter.count(&text) <= limit,
        Err(e) => {
            err.get_or_insert(e);
            false
        }
    };
    let mut m = msg.clone();
    // 1. The story, word by word.
    if let Some(body) = longest_fitting(&msg.body, |b| {
        let mut c = m.clone();
        c.body = b.to_string();
        fits(&c)
    }) {
        m.body = body;
        return render(&m).map_err(FitError::Render);
    }
    m.body = String::new();
    // 2. The title, word by word (no story left).
    if let Some(title) = longest_fitting(&msg.title, |t| {
        let mut c = m.clone();
        c.title = t.to_string();
        fits(&c)
    }) {
        m.title = title;
        return render(&m).map_err(FitError::Render);
    }
    m.title = String::new();
    // 3. The components, named by their number, then not at all (the page names them).
    if let Some(first) = m.components.first() {
        let n = m.components.len();
        let mut counted = first.clone();
        counted.name = format!("{n} component{}", if n == 1 { "" } else { "s" });
        m.components = vec![counted];
        if fits(&m) {
            return render(&m).map_err(FitError::Render);
        }
        m.components.clear();
        if fits(&m) {
            return render(&m).map_err(FitError::Render);
        }
    }
    if let Some(e) = err {
        return Err(FitError::Render(e));
    }
    let length = counter.count(&render(&m).map_err(FitError::Render)?);
    Err(FitError::TooLong { length, limit })
}

#[cfg(test)]
mod tests;
