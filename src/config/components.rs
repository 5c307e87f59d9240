//! `groups:` and `components:`: what the status page lists, and how it groups them.

use std::collections::BTreeSet;

use serde::Deserialize;

use super::{check_id, join, ConfigError};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentConfig {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
}

/// Checks groups and components together: valid, unique ids, and each component's group.
pub(super) fn validate(
    groups: &[GroupConfig],
    components: &[ComponentConfig],
) -> Result<(), ConfigError> {
    let mut known = BTreeSet::new();
    for (i, g) in groups.iter().enumerate() {
        check_id(&format!("groups[{i}].id"), &g.id)?;
        if !known.insert(g.id.as_str()) {
            return Err(ConfigError::invalid(
                format!("groups[{i}].id"),
                format!("`{}` is used twice", g.id),
            ));
        }
    }
    if components.is_empty() {
        return Err(ConfigError::invalid(
            "components",
            "name at least one component",
        ));
    }
    let mut ids = BTreeSet::new();
    for (i, c) in components.iter().enumerate() {
        check_id(&format!("components[{i}].id"), &c.id)?;
        if !ids.insert(c.id.as_str()) {
            return Err(ConfigError::invalid(
                format!("components[{i}].id"),
                format!("`{}` is used twice", c.id),
            ));
        }
        if let Some(g) = &c.group {
            if !known.contains(g.as_str()) {
                return Err(ConfigError::invalid(
                    format!("components[{i}].group"),
                    format!(
                        "unknown group `{g}`; expected one of: {}",
                        join(known.iter())
                    ),
                ));
            }
        }
    }
    Ok(())
}
