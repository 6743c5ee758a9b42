//! `.env` files, read with rules under which every character of a value is safe.
//!
//! Not dotenvy: it expands `$NAME` in unquoted and double-quoted values, so a secret such as
//! `abc$def` silently became `abc`. Here nothing is ever expanded:
//! - `KEY=value`: the rest of the line, trimmed; ` #` (a space, then `#`) starts a comment;
//!   `=`, `$`, quotes and `#` inside the value are kept.
//! - `KEY='value'`: literal, may span lines.
//! - `KEY="value"`: may span lines; `\"`, `\\`, `\n`, `\r`, `\t` are escapes.
//! - blank lines, `# comments` and an `export ` prefix are allowed.

/// Parses `.env` text into (key, value) pairs; an error names the line.
pub fn parse(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let lineno = i + 1;
        let line = lines[i].trim_start();
        i += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let Some((key, rest)) = line.split_once('=') else {
            return Err(format!("line {lineno}: expected KEY=value"));
        };
        let key = key.trim();
        let valid_key = key
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
        if !valid_key {
            return Err(format!("line {lineno}: `{key}` is not a variable name"));
        }
        let rest = rest.trim_start();
        let value = match rest.chars().next() {
            Some(q @ ('\'' | '"')) => {
                // Gather lines until the closing quote.
                let mut body = rest[1..].to_string();
                let (value, after) = loop {
                    if let Some(found) = closing_quote(&body, q) {
                        let value = if q == '"' {
                            unescape(&body[..found])
                        } else {
                            body[..found].to_string()
                        };
                        break (value, body[found + 1..].to_string());
                    }
                    if i >= lines.len() {
                        return Err(format!("line {lineno}: `{key}` has no closing {q}"));
                    }
                    body.push('\n');
                    body.push_str(lines[i]);
                    i += 1;
                };
                let after = after.trim();
                if !after.is_empty() && !after.starts_with('#') {
                    return Err(format!(
                        "line {lineno}: unexpected text after the quoted value of `{key}`"
                    ));
                }
                value
            }
            _ => {
                let v = match rest.find(" #").or_else(|| rest.find("\t#")) {
                    Some(c) => &rest[..c],
                    None => rest,
                };
                v.trim().to_string()
            }
        };
        out.push((key.to_string(), value));
    }
    Ok(out)
}

/// The index of the closing quote (a `"` preceded by a backslash does not close).
fn closing_quote(s: &str, q: char) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if q == '"' && c == '\\' && !escaped {
            escaped = true;
            continue;
        }
        if c == q && !escaped {
            return Some(i);
        }
        escaped = false;
    }
    None
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// Reads `path` if it exists and sets every variable the environment does not already have
/// (the real environment wins). Call before any thread starts.
pub fn load(path: &std::path::Path) -> Result<(), String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let pairs = parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    for (k, v) in pairs {
        if std::env::var_os(&k).is_none() {
            // SAFETY: called from `main` before the runtime or any other thread exists.
            unsafe { std::env::set_var(k, v) };
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse;

    fn get(text: &str, key: &str) -> String {
        parse(text)
            .unwrap()
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
            .unwrap()
    }

    #[test]
    fn every_character_is_safe() {
        let text = r#"
# a comment
export A=abc$def=g#h
B = spaced value  # comment
C='lit $HOME "q" # not a comment'
D="say \"hi\"\t$HOME\\n"
E="multi
line # kept
end"
F='two
lines'
G=
"#;
        assert_eq!(get(text, "A"), "abc$def=g#h");
        assert_eq!(get(text, "B"), "spaced value");
        assert_eq!(get(text, "C"), "lit $HOME \"q\" # not a comment");
        assert_eq!(get(text, "D"), "say \"hi\"\t$HOME\\n");
        assert_eq!(get(text, "E"), "multi\nline # kept\nend");
        assert_eq!(get(text, "F"), "two\nlines");
        assert_eq!(get(text, "G"), "");
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(
            parse("A=1\nnonsense\n").unwrap_err(),
            "line 2: expected KEY=value"
        );
        assert!(
            parse("A=\"open\n")
                .unwrap_err()
                .contains("line 1: `A` has no closing")
        );
        assert!(parse("1A=x").unwrap_err().contains("not a variable name"));
        assert!(parse("A=\"x\" y").unwrap_err().contains("unexpected text"));
    }
}
