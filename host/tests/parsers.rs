//! Every parser of untrusted input, fed random and mutated input: it never panics and
//! either accepts or says clearly what is wrong. (Interaction payloads, Kaltura
//! notifications in all three body formats, `.env` files, Kaltura sessions, sync-socket
//! messages, guild config patches.)

use kdhost::activity::protocol::ClientMessage;
use kdhost::activity::room::Room;
use kdhost::discord::model::Interaction;
use kdhost::kaltura::notification;
use proptest::prelude::*;
use serde_json::{Value, json};

/// Valid samples of each input, to mutate.
fn interaction_sample() -> String {
    json!({"id": "1", "application_id": "2", "type": 2, "token": "t", "version": 1,
        "guild_id": "600000000000000001", "channel_id": "200000000000000001",
        "member": {"user": {"id": "700000000000000001", "username": "ann"}, "roles": ["1"], "permissions": "8"},
        "data": {"id": "3", "name": "help", "type": 1, "options": [{"name": "q", "type": 3, "value": "x"}]}})
    .to_string()
}

fn notification_sample() -> Value {
    json!({"eventNotificationJobId": 7, "eventType": 3, "eventObjectType": 1,
        "object": {"objectType": "KalturaMediaEntry", "id": "0_a", "name": "A", "status": 2, "tags": "x, y"},
        "templateSystemName": "kd_entry_ready", "partnerId": 1})
}

/// Random edits of a valid text: flipped bytes, cuts, duplicated and dropped spans.
fn mutated(sample: String) -> impl Strategy<Value = Vec<u8>> {
    let len = sample.len();
    prop::collection::vec((0..len, any::<u8>(), 0u8..4), 0..8).prop_map(move |edits| {
        let mut b = sample.clone().into_bytes();
        for (at, byte, kind) in edits {
            if b.is_empty() {
                break;
            }
            let at = at % b.len();
            match kind {
                0 => b[at] = byte,
                1 => b.truncate(at),
                2 => {
                    let span: Vec<u8> = b[at..].iter().take(8).copied().collect();
                    b.splice(at..at, span);
                }
                _ => {
                    b.remove(at);
                }
            }
        }
        b
    })
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..512)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn interaction_payloads(b in prop_oneof![bytes(), mutated(interaction_sample())]) {
        // The endpoint's parse: a typed value or a serde error that says where.
        if let Err(e) = serde_json::from_slice::<Interaction>(&b) {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn kaltura_notifications_in_every_body_format(
        b in prop_oneof![
            bytes(),
            mutated(notification_sample().to_string()),
            mutated(format!("data={}", url::form_urlencoded::byte_serialize(notification_sample().to_string().as_bytes()).collect::<String>())),
            mutated("eventNotificationJobId=7&eventType=3&object%5Bid%5D=0_a&object%5Bname%5D=A&object%5Bstatus%5D=2".to_string()),
        ],
        ct in prop::sample::select(vec!["application/json", "application/x-www-form-urlencoded", "multipart/form-data", "text/xml", ""]),
    ) {
        match notification::decode(ct, &b) {
            Ok(v) => {
                // Whatever decodes is classified or skipped, never a panic.
                let _ = notification::classify(&v, &b);
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn dotenv_files(text in prop_oneof![
        ".*",
        mutated("A=1\nB='two words' # note\nC=\"esc\\n\\\"q\\\"\"\nexport D=x\n".to_string())
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]) {
        match kdhost::config::dotenv::parse(&text) {
            Ok(pairs) => for (k, _) in pairs { prop_assert!(!k.is_empty()); },
            Err(e) => prop_assert!(e.contains("line"), "{e}"),
        }
    }

    #[test]
    fn kaltura_sessions(ks in prop_oneof![
        "[A-Za-z0-9+/=_|-]{0,300}",
        mutated(kaltura_ks::KsRequest {
            partner_id: 42,
            user_id: "u",
            session_type: kaltura_ks::SessionType::User,
            expiry: 4_102_444_800,
            privileges: "sview:0_a",
        }.sign("secret")).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]) {
        match kaltura_ks::verify(&ks, 42, &["secret"], 1_700_000_000) {
            Ok(info) => prop_assert_eq!(info.partner_id, 42),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn sync_socket_messages(b in prop_oneof![
        bytes(),
        mutated(r#"{"type":"seek","position":12.5}"#.to_string()),
        mutated(r#"{"type":"load","entry_id":"1_abcdefgh"}"#.to_string()),
        mutated(r#"{"type":"play","position":1e308}"#.to_string()),
        mutated(r#"{"type":"transfer","to":"700000000000000002"}"#.to_string()),
        mutated(r#"{"type":"rate","rate":2.0}"#.to_string()),
    ]) {
        let text = String::from_utf8_lossy(&b);
        match serde_json::from_str::<ClientMessage>(&text) {
            Ok(msg) => {
                // The room takes it or refuses it with a reason; its state stays sane.
                let mut room = Room::new("i", None, None, 0);
                room.join("a", "Ann", None);
                if let Err(r) = room.apply("a", &msg, 1_000) {
                    prop_assert!(!r.to_string().is_empty());
                }
                let p = room.state().position;
                prop_assert!(p.is_finite() && p >= 0.0, "position {p}");
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn guild_config_patches(patch in prop_oneof![
        mutated(r##"{"notifications":{"enabled":false,"channel":"#news"},"kaltura":{"session":{"privileges":{"default":"privacycontext:c"}}}}"##.to_string()),
        mutated(r##"{"plugins":{"x":{"channels":["#a"],"settings":{"k":[1,{"n":null}]}}},"rules":{"disabled":["global/a.rhai"]}}"##.to_string()),
    ]) {
        // What PATCH /api/v1/guilds/{id}/config does with a body: parse, merge, validate.
        let Ok(patch) = serde_json::from_slice::<Value>(&patch) else { return Ok(()) };
        let mut merged = json!({});
        kdhost::config::admin::merge_patch(&mut merged, &patch);
        if let Err(e) = kdhost::config::guild::check_text("g.json", &merged.to_string()) {
            prop_assert!(e.starts_with("g.json: "), "{e}");
        }
    }
}
