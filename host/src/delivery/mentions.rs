//! A message's mentions, clamped to what its guild allows.

use serde_json::{Value, json};

/// The mentions a message may make: what it asks for, within what the guild allows (a
/// message that asks nothing gets the guild's policy).
pub fn clamp_mentions(requested: &Value, policy: &Value) -> Value {
    if !requested.is_object() {
        return policy.clone();
    }
    let list = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str().map(String::from))
            .collect()
    };
    let (allowed_parse, allowed_roles) = (list(&policy["parse"]), list(&policy["roles"]));
    let parse: Vec<String> = list(&requested["parse"])
        .into_iter()
        .filter(|p| allowed_parse.contains(p))
        .collect();
    let roles: Vec<String> = list(&requested["roles"])
        .into_iter()
        .filter(|r| allowed_roles.contains(r))
        .collect();
    json!({"parse": parse, "roles": roles})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_never_exceed_the_guild_policy() {
        let policy = json!({"parse": ["users"], "roles": ["5"]});
        assert_eq!(
            clamp_mentions(
                &json!({"parse": ["everyone", "users"], "roles": ["5", "6"]}),
                &policy
            ),
            json!({"parse": ["users"], "roles": ["5"]})
        );
        assert_eq!(clamp_mentions(&Value::Null, &policy), policy);
        let silent = json!({"parse": [], "roles": []});
        assert_eq!(
            clamp_mentions(&json!({"parse": ["everyone"]}), &silent),
            silent
        );
    }
}
