//! Kaltura's HTTP event notifications, as Kaltura's batch system sends them: a
//! `KalturaHttpNotification` in one of the three body formats, signed
//! `hex(hash(adminSecret + body))` in `X-KALTURA-SIGNATURE` with `X-KALTURA-HASH-ALGO`.

use serde_json::{Value, json};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

use super::KalturaStandIn;

/// How the template encodes the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// Raw JSON (the template's urlEncode off).
    Json,
    /// `data=` + urlencoded JSON (Kaltura's default).
    DataParam,
    /// Form "data fields": `entry_id=…&entry_name=…`.
    DataFields,
}

/// A ready-to-send notification.
#[derive(Debug, Clone)]
pub struct SignedNotification {
    pub body: Vec<u8>,
    pub content_type: &'static str,
    pub signature: String,
    pub algo: &'static str,
}

/// `hex(hash(secret + body))`.
pub fn signature(algo: &str, secret: &str, body: &[u8]) -> String {
    fn digest<D: Digest>(secret: &str, body: &[u8]) -> String {
        let mut d = D::new();
        d.update(secret.as_bytes());
        d.update(body);
        hex::encode(d.finalize())
    }
    match algo {
        "sha256" => digest::<Sha256>(secret, body),
        "sha512" => digest::<Sha512>(secret, body),
        _ => digest::<Sha1>(secret, body),
    }
}

/// A `KalturaHttpNotification` about an object.
/// `event_type`: 2 object added, 3 object changed, 5 created, 11 updated, …
pub fn http_notification(job_id: u64, event_type: u32, template: &str, object: Value) -> Value {
    let object_type = match object["objectType"].as_str() {
        Some(t) if t.contains("Category") && !t.contains("CategoryEntry") => 2,
        Some("KalturaUser") => 8,
        _ => 1,
    };
    json!({
        "objectType": "KalturaHttpNotification",
        "object": object,
        "eventObjectType": object_type,
        "eventNotificationJobId": job_id,
        "templateId": 100 + event_type,
        "templateName": template,
        "templateSystemName": template,
        "eventType": event_type,
    })
}

/// Encodes and signs a notification.
pub fn encode(
    notification: &Value,
    format: BodyFormat,
    secret: &str,
    algo: &'static str,
) -> SignedNotification {
    let (body, content_type) = match format {
        BodyFormat::Json => (notification.to_string(), "application/json"),
        BodyFormat::DataParam => (
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("data", &notification.to_string())
                .finish(),
            "application/x-www-form-urlencoded",
        ),
        BodyFormat::DataFields => {
            let o = &notification["object"];
            let mut f = url::form_urlencoded::Serializer::new(String::new());
            let text = |v: &Value| match v {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            for (field, key) in [
                ("entry_id", "id"),
                ("entry_name", "name"),
                ("entry_status", "status"),
                ("entry_tags", "tags"),
                ("entry_categories", "categories"),
                ("entry_thumbnail_url", "thumbnailUrl"),
                ("entry_description", "description"),
            ] {
                if !o[key].is_null() {
                    f.append_pair(field, &text(&o[key]));
                }
            }
            f.append_pair(
                "template_system_name",
                &text(&notification["templateSystemName"]),
            );
            (f.finish(), "application/x-www-form-urlencoded")
        }
    };
    let body = body.into_bytes();
    SignedNotification {
        signature: signature(algo, secret, &body),
        body,
        content_type,
        algo,
    }
}

/// POSTs a notification to a webhook URL the way Kaltura's batch does; returns the status
/// and body text.
pub async fn post(
    client: &reqwest::Client,
    url: &str,
    n: &SignedNotification,
) -> anyhow::Result<(u16, String)> {
    let resp = client
        .post(url)
        .header("content-type", n.content_type)
        .header("x-kaltura-signature", &n.signature)
        .header("x-kaltura-hash-algo", n.algo)
        .body(n.body.clone())
        .send()
        .await?;
    let status = resp.status().as_u16();
    Ok((status, resp.text().await.unwrap_or_default()))
}

impl KalturaStandIn {
    /// A fixture entry as the `object` of a notification (`None` for an unknown id).
    pub fn entry_object(&self, entry_id: &str) -> Option<Value> {
        self.inner
            .data
            .lock()
            .unwrap()
            .entries
            .iter()
            .find(|e| e["id"] == entry_id)
            .cloned()
    }

    /// A fixture entry's name (`None` for an unknown id).
    pub fn entry_name(&self, entry_id: &str) -> Option<String> {
        self.entry_object(entry_id)
            .and_then(|e| e["name"].as_str().map(String::from))
    }

    /// "This entry is ready": the status-changed notification Kaltura sends when a fixture
    /// entry reaches READY, signed with this partner's admin secret.
    pub fn entry_ready_notification(
        &self,
        entry_id: &str,
        job_id: u64,
        format: BodyFormat,
        algo: &'static str,
    ) -> Option<SignedNotification> {
        let mut object = self.entry_object(entry_id)?;
        object["status"] = json!(2);
        let n = http_notification(job_id, 3, "Entry Status Changed", object);
        Some(encode(&n, format, self.admin_secret(), algo))
    }

    /// "This room changed": the object-changed notification (JSON body) Kaltura sends about
    /// a room entry, e.g. after a recording was attached to it (`None` for an unknown room).
    pub fn room_changed_notification(
        &self,
        room_id: &str,
        job_id: u64,
    ) -> Option<SignedNotification> {
        let room = self.rooms().into_iter().find(|r| r["id"] == room_id)?;
        let n = http_notification(job_id, 3, "Room Entry Changed", room);
        Some(encode(&n, BodyFormat::Json, self.admin_secret(), "sha256"))
    }

    /// [`post`] with a shared client.
    pub async fn deliver_notification(
        &self,
        url: &str,
        n: &SignedNotification,
    ) -> anyhow::Result<(u16, String)> {
        static HTTP: std::sync::LazyLock<reqwest::Client> =
            std::sync::LazyLock::new(reqwest::Client::new);
        post(&HTTP, url, n).await
    }
}
