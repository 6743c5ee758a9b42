//! Request parameters the way the Kaltura server reads them: a JSON body, a form body and
//! the query string, merged (query wins), with flat `filter:freeText=...` keys expanded
//! into nested objects and numbered keys (`searchItems:0:...`) into arrays.

use serde_json::{Map, Value};

/// Parses `a:b:c=v` pairs into nested objects.
pub fn from_flat(pairs: impl IntoIterator<Item = (String, String)>) -> Value {
    let mut root = Value::Object(Map::new());
    for (k, v) in pairs {
        let parts: Vec<&str> = k.split(':').collect();
        insert(&mut root, &parts, v);
    }
    arrays_from_numbered(root)
}

fn insert(node: &mut Value, path: &[&str], value: String) {
    if !node.is_object() {
        // `filter=x` then `filter:y=z`: the object form wins, as in PHP.
        *node = Value::Object(Map::new());
    }
    let obj = node.as_object_mut().expect("just made an object");
    match path {
        [] => {}
        [last] => {
            obj.insert(last.to_string(), Value::String(value));
        }
        [first, rest @ ..] => insert(
            obj.entry(first.to_string()).or_insert(Value::Null),
            rest,
            value,
        ),
    }
}

/// Objects whose keys are all numbers become arrays (ordered by number).
fn arrays_from_numbered(v: Value) -> Value {
    match v {
        Value::Object(o) => {
            let numbered = !o.is_empty() && o.keys().all(|k| k.parse::<u32>().is_ok());
            let mut items: Vec<(String, Value)> = o
                .into_iter()
                .map(|(k, v)| (k, arrays_from_numbered(v)))
                .collect();
            if numbered {
                items.sort_by_key(|(k, _)| k.parse::<u32>().unwrap_or(0));
                Value::Array(items.into_iter().map(|(_, v)| v).collect())
            } else {
                Value::Object(items.into_iter().collect())
            }
        }
        other => other,
    }
}

/// Merges `over` into `base` (objects key by key, everything else replaces).
pub fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, o) => *b = o,
    }
}

/// All parameters of one request: JSON or form body first, then the query string.
pub fn collect(
    query: Option<&str>,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Value, String> {
    let mut params = Value::Object(Map::new());
    if !body.is_empty() {
        let is_json = content_type.is_some_and(|c| c.contains("json"));
        if is_json {
            let v: Value = serde_json::from_slice(body)
                .map_err(|e| format!("the JSON body does not parse: {e}"))?;
            if !v.is_object() {
                return Err("the JSON body must be an object".into());
            }
            merge(&mut params, v);
        } else {
            let pairs = url::form_urlencoded::parse(body).into_owned();
            merge(&mut params, from_flat(pairs));
        }
    }
    if let Some(q) = query {
        let pairs = url::form_urlencoded::parse(q.as_bytes()).into_owned();
        merge(&mut params, from_flat(pairs));
    }
    Ok(params)
}

/// Numbers arrive as JSON numbers or as strings (form parameters): accept both.
pub fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        Value::Bool(b) => Some(*b as i64),
        _ => None,
    }
}

/// Copies the fields of `from` named in `writable` onto `into` (what a caller may set on
/// an object; the rest are the server's).
pub fn copy_writable(into: &mut Value, from: &Value, writable: &[&str]) {
    if let Value::Object(fields) = from {
        for (k, v) in fields {
            if writable.contains(&k.as_str()) {
                into[k] = v.clone();
            }
        }
    }
}

pub fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Replaces `{N:result:path}` references in a multirequest sub-request with values from
/// earlier results.
pub fn resolve_refs(v: &mut Value, results: &[Value]) {
    match v {
        Value::String(s) => {
            if let Some(inner) = s.strip_prefix('{').and_then(|r| r.strip_suffix('}'))
                && let Some((n, path)) = inner.split_once(":result")
                && let Ok(n) = n.parse::<usize>()
                && n >= 1
                && let Some(base) = results.get(n - 1)
            {
                let mut cur = base;
                for part in path.split(':').filter(|p| !p.is_empty()) {
                    cur = match part.parse::<usize>() {
                        Ok(i) if cur.is_array() => &cur[i],
                        _ => &cur[part],
                    };
                }
                *v = cur.clone();
            }
        }
        Value::Object(o) => o.values_mut().for_each(|x| resolve_refs(x, results)),
        Value::Array(a) => a.iter_mut().for_each(|x| resolve_refs(x, results)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flat_form_keys_become_nested_objects_and_arrays() {
        let body = b"filter:objectType=KalturaMediaEntryFilter&filter:freeText=a+b&pager:pageSize=5\
&searchParams:searchOperator:searchItems:0:searchTerm=x&searchParams:searchOperator:searchItems:1:searchTerm=y";
        let p = collect(Some("format=1&pager:pageSize=7"), None, body).unwrap();
        assert_eq!(p["filter"]["freeText"], "a b");
        assert_eq!(p["pager"]["pageSize"], "7", "the query string wins");
        assert_eq!(
            p["searchParams"]["searchOperator"]["searchItems"][1]["searchTerm"],
            "y"
        );
    }

    #[test]
    fn json_bodies_and_references() {
        let p = collect(
            None,
            Some("application/json"),
            br#"{"1":{"service":"media"}}"#,
        )
        .unwrap();
        assert_eq!(p["1"]["service"], "media");
        let mut sub = json!({"entryId": "{1:result:objects:0:id}"});
        resolve_refs(&mut sub, &[json!({"objects": [{"id": "0_a"}]})]);
        assert_eq!(sub["entryId"], "0_a");
        assert!(collect(None, Some("application/json"), b"[1]").is_err());
    }
}
