//! `{{ENV_VAR}}` placeholders in guild config strings, filled from the environment.
//!
//! Only UPPER_CASE names are placeholders (templates use lower-case `{{entry_name}}`), and
//! names that look like secrets are refused: a guild file must not be a way to print the bot
//! token into a channel.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use super::schema::json_path;

static PLACEHOLDER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\{\{\s*([A-Z][A-Z0-9_]*)\s*\}\}").expect("static regex"));

/// Variables a config may never read, whatever their value.
fn is_secret_name(name: &str) -> bool {
    [
        "SECRET",
        "TOKEN",
        "PASSWORD",
        "PRIVATE",
        "KEY",
        "CREDENTIAL",
    ]
    .iter()
    .any(|s| name.contains(s))
}

/// The environment variables a value's strings name (changes made through Discord or the
/// API may not add one: only the operator decides what the environment lends to a guild).
pub fn placeholder_names(v: &Value) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    fn walk(v: &Value, out: &mut std::collections::BTreeSet<String>) {
        match v {
            Value::String(s) => out.extend(PLACEHOLDER.captures_iter(s).map(|c| c[1].to_string())),
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            Value::Object(o) => o.values().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    walk(v, &mut out);
    out
}

/// Replaces every placeholder in every string, using `lookup` for the values. Errors name
/// the JSON path and the variable.
pub fn resolve(v: &Value, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Value, String> {
    fn walk(
        v: &Value,
        pointer: &mut String,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Value, String> {
        Ok(match v {
            Value::String(s) if PLACEHOLDER.is_match(s) => {
                let mut err = None;
                let out = PLACEHOLDER.replace_all(s, |c: &regex::Captures<'_>| {
                    let name = &c[1];
                    if is_secret_name(name) {
                        err.get_or_insert(format!(
                            "{}: `{{{{{name}}}}}` looks like a secret; secrets cannot be placed in guild configuration",
                            json_path(pointer)
                        ));
                        return String::new();
                    }
                    lookup(name).unwrap_or_else(|| {
                        err.get_or_insert(format!(
                            "{}: environment variable {name} is not set (used as `{{{{{name}}}}}`)",
                            json_path(pointer)
                        ));
                        String::new()
                    })
                });
                if let Some(e) = err {
                    return Err(e);
                }
                Value::String(out.into_owned())
            }
            Value::Array(a) => {
                let mut out = Vec::with_capacity(a.len());
                for (i, x) in a.iter().enumerate() {
                    let len = pointer.len();
                    pointer.push_str(&format!("/{i}"));
                    out.push(walk(x, pointer, lookup)?);
                    pointer.truncate(len);
                }
                Value::Array(out)
            }
            Value::Object(o) => {
                let mut out = serde_json::Map::with_capacity(o.len());
                for (k, x) in o {
                    let len = pointer.len();
                    pointer.push('/');
                    pointer.push_str(&k.replace('~', "~0").replace('/', "~1"));
                    out.insert(k.clone(), walk(x, pointer, lookup)?);
                    pointer.truncate(len);
                }
                Value::Object(out)
            }
            other => other.clone(),
        })
    }
    walk(v, &mut String::new(), lookup)
}

/// The process environment as a lookup.
pub fn from_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env(name: &str) -> Option<String> {
        match name {
            "RECORDINGS_CHANNEL" => Some("123".into()),
            "ODD" => Some("a \"quoted\" {{X}} $y".into()),
            _ => None,
        }
    }

    #[test]
    fn fills_upper_case_names_and_leaves_template_fields() {
        let v = json!({"notifications": {"channel": "{{RECORDINGS_CHANNEL}}",
            "templates": {"entry_ready": "{{entry_name}} in {{ RECORDINGS_CHANNEL }}"}},
            "list": ["x{{ODD}}"]});
        let out = resolve(&v, &env).unwrap();
        assert_eq!(out["notifications"]["channel"], "123");
        assert_eq!(
            out["notifications"]["templates"]["entry_ready"],
            "{{entry_name}} in 123"
        );
        // A value is inserted as is, never expanded again.
        assert_eq!(out["list"][0], "xa \"quoted\" {{X}} $y");
    }

    #[test]
    fn missing_and_secret_variables_are_errors_with_a_path() {
        let err = resolve(&json!({"a": [{"b": "{{NOPE}}"}]}), &env).unwrap_err();
        assert!(
            err.starts_with("$.a[0].b: environment variable NOPE"),
            "{err}"
        );
        let err = resolve(&json!({"t": "{{DISCORD_BOT_TOKEN}}"}), &|_| {
            Some("x".into())
        })
        .unwrap_err();
        assert!(err.contains("looks like a secret"), "{err}");
        assert_eq!(placeholder_names(&json!({"a": ["{{X}} {{ Y }}"]})).len(), 2);
        assert!(placeholder_names(&json!({"a": ["{{x}}"]})).is_empty());
    }
}
