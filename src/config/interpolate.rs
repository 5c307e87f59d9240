//! `${VAR}` secrets: environment variables read into string values before the YAML is typed.

use super::ConfigError;

/// Replaces `${VAR}` and `${VAR:-default}` inside string values; `$$` stands for a literal `$`.
pub(super) fn interpolate(
    v: &mut serde_yaml::Value,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    use serde_yaml::Value;
    match v {
        Value::String(s) if s.contains('$') => *s = expand(s, path, env)?,
        Value::Sequence(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                interpolate(item, &format!("{path}[{i}]"), env)?;
            }
        }
        Value::Mapping(map) => {
            for (k, item) in map.iter_mut() {
                let key = k
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("{k:?}"));
                let p = if path.is_empty() {
                    key
                } else {
                    format!("{path}.{key}")
                };
                interpolate(item, &p, env)?;
            }
        }
        Value::Tagged(t) => interpolate(&mut t.value, path, env)?,
        _ => {}
    }
    Ok(())
}

fn expand(
    s: &str,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body.find('}').ok_or_else(|| {
                ConfigError::invalid(
                    path,
                    "unclosed `${`; write `${NAME}` or `$$` for a literal `$`",
                )
            })?;
            let expr = &body[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (expr, None),
            };
            let valid = !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit());
            if !valid {
                return Err(ConfigError::invalid(
                    path,
                    format!("`${{{expr}}}` does not name an environment variable"),
                ));
            }
            match (env(name), default) {
                (Some(val), _) => out.push_str(&val),
                (None, Some(d)) => out.push_str(d),
                (None, None) => {
                    return Err(ConfigError::invalid(
                        path,
                        format!("environment variable `{name}` is not set"),
                    ))
                }
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{no_env, MINIMAL};
    use super::super::{Config, Overrides};

    #[test]
    fn env_interpolation_and_default() {
        let text = MINIMAL.replace("help@acme.test", "\"${SUPPORT:-fallback@acme.test}\"")
            + "database: { url: \"${DB_URL}\" }\n";
        let env = |n: &str| (n == "DB_URL").then(|| "postgres://u:p@localhost/x".to_string());
        let c = Config::from_yaml_with_env(&text, &Overrides::default(), &env).unwrap();
        assert_eq!(c.site.support_contact, "fallback@acme.test");
        assert_eq!(c.database.url.expose(), "postgres://u:p@localhost/x");
        let err = Config::from_yaml_with_env(&text, &Overrides::default(), &no_env)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("database.url") && err.contains("DB_URL"),
            "{err}"
        );
    }
}
