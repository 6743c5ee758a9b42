//! Activity launches: when a plugin answers a control with LAUNCH_ACTIVITY, the host keeps
//! which control it was (`store::Launches`) so the Activity that opens next can ask what
//! it was launched for. Without Activities on the app, the answer becomes a link to the
//! Activity in a browser instead.

use serde_json::json;

use super::response::{Callback, EPHEMERAL};

/// The browser link that stands in for LAUNCH_ACTIVITY on apps without Activities.
pub fn link_instead(public_url: &str, custom_id: &str) -> Callback {
    let launch: String = url::form_urlencoded::byte_serialize(custom_id.as_bytes()).collect();
    let url = format!(
        "{}/activity/?launch={launch}",
        public_url.trim_end_matches('/')
    );
    Callback::Message(json!({
        "content": "Watch Together runs in your browser on this server:",
        "flags": EPHEMERAL,
        "components": [{"type": 1, "components": [{"type": 2, "style": 5, "label": "Open Watch Together", "url": url}]}],
        "allowed_mentions": {"parse": []},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_link_carries_the_launching_control() {
        let link = link_instead("http://h:1/", "p:watch:1_a").to_json();
        assert_eq!(
            link["data"]["components"][0]["components"][0]["url"],
            "http://h:1/activity/?launch=p%3Awatch%3A1_a"
        );
    }
}
