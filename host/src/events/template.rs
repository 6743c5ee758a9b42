//! `{{placeholder}}` templates for messages: notifications, rules (`template(s, map)`).
//! Lower-case names with dots for nesting (`{{entry.name}}`); an unknown name renders empty.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

static FIELD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\{\{\s*([a-z_][a-z0-9_]*(?:\.[a-z0-9_]+)*)\s*\}\}").expect("static regex")
});

/// Fills every `{{name}}` from `vars` (strings as is, other scalars as JSON text).
pub fn render(template: &str, vars: &Value) -> String {
    FIELD
        .replace_all(template, |c: &regex::Captures<'_>| {
            let mut node = vars;
            for part in c[1].split('.') {
                node = &node[part];
            }
            match node {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                Value::Array(a) => a
                    .iter()
                    .map(|x| {
                        x.as_str()
                            .map(String::from)
                            .unwrap_or_else(|| x.to_string())
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                other => other.to_string(),
            }
        })
        .into_owned()
}

/// Cuts text to at most `max` characters (Discord counts characters), marking the cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fills_known_fields_and_blanks_unknown_ones() {
        let vars =
            json!({"entry_name": "Talk", "n": 3, "tags": ["a", "b"], "entry": {"id": "0_x"}});
        assert_eq!(
            render(
                "{{entry_name}} ({{ n }}) [{{tags}}] {{entry.id}} {{nope}} {{KEEP}}",
                &vars
            ),
            "Talk (3) [a, b] 0_x  {{KEEP}}"
        );
        // Values are inserted once, never re-expanded.
        assert_eq!(render("{{a}}", &json!({"a": "{{b}}", "b": "x"})), "{{b}}");
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
    }
}
