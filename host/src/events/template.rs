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
    match render_limited(template, vars, usize::MAX) {
        Ok(s) | Err(s) => s,
    }
}

/// Like [`render`], but stops as soon as the output would pass `max` bytes, so a small
/// template that repeats a large value cannot allocate more than `max`. `Err` carries the
/// output cut at the limit.
pub fn render_limited(template: &str, vars: &Value, max: usize) -> Result<String, String> {
    let mut out = String::new();
    let push = |out: &mut String, piece: &str| -> bool {
        if out.len().saturating_add(piece.len()) > max {
            let mut cut = max - out.len();
            while !piece.is_char_boundary(cut) {
                cut -= 1;
            }
            out.push_str(&piece[..cut]);
            return false;
        }
        out.push_str(piece);
        true
    };
    let mut last = 0;
    for c in FIELD.captures_iter(template) {
        let whole = c.get(0).expect("group 0 always matches");
        if !push(&mut out, &template[last..whole.start()]) {
            return Err(out);
        }
        last = whole.end();
        let mut node = vars;
        for part in c[1].split('.') {
            node = &node[part];
        }
        let ok = match node {
            Value::String(s) => push(&mut out, s),
            Value::Null => true,
            Value::Array(a) => {
                let mut ok = true;
                for (i, x) in a.iter().enumerate() {
                    let text = x
                        .as_str()
                        .map(String::from)
                        .unwrap_or_else(|| x.to_string());
                    ok = (i == 0 || push(&mut out, ", ")) && push(&mut out, &text);
                    if !ok {
                        break;
                    }
                }
                ok
            }
            other => push(&mut out, &other.to_string()),
        };
        if !ok {
            return Err(out);
        }
    }
    if !push(&mut out, &template[last..]) {
        return Err(out);
    }
    Ok(out)
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

    #[test]
    fn rendering_stops_at_the_limit() {
        let vars = json!({"big": "x".repeat(1000), "list": ["é", "é", "é"]});
        let template = "{{big}}".repeat(10_000);
        let cut = render_limited(&template, &vars, 2500).unwrap_err();
        assert_eq!(cut.len(), 2500);
        // Cut on a character boundary, never inside one.
        let cut = render_limited("{{w}}", &json!({"w": "éé"}), 3).unwrap_err();
        assert_eq!(cut, "é");
        assert_eq!(
            render_limited("a{{list}}b", &vars, 100).unwrap(),
            "aé, é, éb"
        );
    }
}
