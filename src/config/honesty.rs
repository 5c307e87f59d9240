//! `honesty:` settings: what the check before publishing looks for
//! ([`crate::domain::honesty::check`]).

use serde::Deserialize;

use super::ConfigError;
use crate::domain::honesty::DEFAULT_MINIMISING;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HonestyConfig {
    /// Words and phrases that play a major or critical incident down; an update using one gets
    /// a warning (matched case-insensitively, as whole words).
    #[serde(default = "default_minimising")]
    pub minimising_words: Vec<String>,
}

impl Default for HonestyConfig {
    fn default() -> Self {
        Self {
            minimising_words: default_minimising(),
        }
    }
}

fn default_minimising() -> Vec<String> {
    DEFAULT_MINIMISING.iter().map(|s| s.to_string()).collect()
}

impl HonestyConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for (i, w) in self.minimising_words.iter().enumerate() {
            let n = w.trim().chars().count();
            if n == 0 || n > 100 {
                return Err(ConfigError::invalid(
                    format!("honesty.minimising_words[{i}]"),
                    "must be a word or phrase of 1 to 100 characters",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_a_blank_entry_named_by_its_key() {
        let c: HonestyConfig = serde_yaml::from_str("{}").unwrap();
        assert_eq!(c.minimising_words.len(), DEFAULT_MINIMISING.len());
        let c: HonestyConfig =
            serde_yaml::from_str("minimising_words: [\"only a few\", \" \"]").unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("honesty.minimising_words[1]"), "{e}");
        assert!(serde_yaml::from_str::<HonestyConfig>("words: []").is_err());
    }
}
