//! Kaltura's XML answers (`format=2`, what Kaltura's official clients ask for):
//! `<xml><result>…</result><executionTime>…</executionTime></xml>`. Objects are elements per
//! field, arrays `<item>`s, booleans `1`/`0`; an exception is
//! `<error><objectType>KalturaAPIException</objectType><code/><message/><args/></error>`.

use std::fmt::Write;

use serde_json::Value;

/// The whole document for one answer (a multirequest's is an array of results).
pub fn document(result: &Value, execution_secs: f64) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?><xml><result>");
    body(&mut out, result);
    let _ = write!(
        out,
        "</result><executionTime>{execution_secs:.6}</executionTime></xml>"
    );
    out
}

fn is_exception(v: &Value) -> bool {
    v["objectType"] == "KalturaAPIException"
}

/// What goes inside an element for this value.
fn body(out: &mut String, v: &Value) {
    match v {
        Value::Null => {}
        Value::Bool(b) => out.push_str(if *b { "1" } else { "0" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => escape(out, s),
        Value::Array(items) => {
            for item in items {
                out.push_str("<item>");
                body(out, item);
                out.push_str("</item>");
            }
        }
        Value::Object(_) if is_exception(v) => exception(out, v),
        Value::Object(fields) => {
            // `objectType` first, as Kaltura writes it.
            let typed = fields.get_key_value("objectType");
            let rest = fields.iter().filter(|(k, _)| *k != "objectType");
            for (k, v) in typed.into_iter().chain(rest) {
                let name: String = k
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if name.is_empty() {
                    continue;
                }
                let _ = write!(out, "<{name}>");
                body(out, v);
                let _ = write!(out, "</{name}>");
            }
        }
    }
}

fn exception(out: &mut String, e: &Value) {
    out.push_str("<error><objectType>KalturaAPIException</objectType><code>");
    escape(out, e["code"].as_str().unwrap_or_default());
    out.push_str("</code><message>");
    escape(out, e["message"].as_str().unwrap_or_default());
    out.push_str("</message><args>");
    for (name, value) in e["args"].as_object().into_iter().flatten() {
        out.push_str("<item><objectType>KalturaApiExceptionArg</objectType><name>");
        escape(out, name);
        out.push_str("</name><value>");
        match value {
            Value::String(s) => escape(out, s),
            other => escape(out, &other.to_string()),
        }
        out.push_str("</value></item>");
    }
    out.push_str("</args></error>");
}

fn escape(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot carry at all.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn objects_lists_and_exceptions_as_kaltura_writes_them() {
        let list = json!({"objectType": "KalturaMediaListResponse", "totalCount": 1,
            "objects": [{"objectType": "KalturaMediaEntry", "id": "0_a", "name": "A & <B>", "flag": true}]});
        let doc = document(&list, 0.01);
        assert!(doc.starts_with("<?xml"), "{doc}");
        assert!(doc.contains("<result><objectType>KalturaMediaListResponse</objectType>"));
        assert!(doc.contains("<objects><item><objectType>KalturaMediaEntry</objectType><flag>1</flag><id>0_a</id><name>A &amp; &lt;B&gt;</name></item></objects>"), "{doc}");
        assert!(doc.ends_with("<executionTime>0.010000</executionTime></xml>"));
        let err = json!({"objectType": "KalturaAPIException", "code": "ENTRY_ID_NOT_FOUND",
            "message": "Entry id \"0_x\" not found", "args": {"ENTRY_ID": "0_x"}});
        let doc = document(&err, 0.0);
        assert!(doc.contains("<result><error><objectType>KalturaAPIException</objectType><code>ENTRY_ID_NOT_FOUND</code><message>Entry id &quot;0_x&quot; not found</message><args><item><objectType>KalturaApiExceptionArg</objectType><name>ENTRY_ID</name><value>0_x</value></item></args></error></result>"), "{doc}");
        assert!(document(&json!("djJ8abc"), 0.0).contains("<result>djJ8abc</result>"));
    }
}
