//! Sessions and users: `session.start`, the server's KS check, `user.get` / `user.add`.

use kaltura_ks::{KsError, KsInfo, KsRequest, SessionType};
use serde_json::{Value, json};

use super::params::{int, text};
use super::{ApiError, ApiResult, Data, KalturaOptions, now};

pub fn start_session(opts: &KalturaOptions, p: &Value) -> ApiResult {
    let pid = int(&p["partnerId"]).unwrap_or(-1);
    let fail = || {
        ApiError::new(
            "START_SESSION_ERROR",
            format!("Error while starting session for partner [{pid}]"),
        )
        .with_args(json!({"PARTNER_ID": pid.to_string()}))
    };
    let secret = text(&p["secret"]).unwrap_or_default();
    if pid != opts.partner_id as i64 || !opts.admin_secrets.contains(&secret) {
        return Err(fail());
    }
    let session_type = match int(&p["type"]).unwrap_or(0) {
        0 => SessionType::User,
        2 => SessionType::Admin,
        _ => return Err(fail()),
    };
    let expiry = int(&p["expiry"]).filter(|e| *e > 0).unwrap_or(86_400);
    let user = text(&p["userId"]).unwrap_or_default();
    let privileges = text(&p["privileges"]).unwrap_or_default();
    let ks = KsRequest {
        partner_id: opts.partner_id,
        user_id: &user,
        session_type,
        expiry: now() + expiry,
        privileges: &privileges,
    }
    .sign(&secret);
    Ok(Value::String(ks))
}

/// The KS check every other action goes through. `force_expired` simulates a KS that ran
/// out between signing and use.
pub fn check_ks(opts: &KalturaOptions, p: &Value, force_expired: bool) -> Result<KsInfo, ApiError> {
    let Some(ks) = text(&p["ks"]).filter(|k| !k.is_empty()) else {
        return Err(ApiError::new(
            "MISSING_KS",
            "Missing KS, session not established",
        ));
    };
    let secrets: Vec<&str> = opts.admin_secrets.iter().map(String::as_str).collect();
    let invalid = |code: i32, desc: &str| {
        // The server quotes the KS back in the message (the host must never log it).
        ApiError::new(
            "INVALID_KS",
            format!("Invalid KS \"{ks}\" Error \"{code},{desc}\""),
        )
        .with_args(json!({"KSID": desc}))
    };
    match kaltura_ks::verify(&ks, opts.partner_id, &secrets, now()) {
        Ok(_) if force_expired => Err(invalid(-5, "EXPIRED")),
        Ok(info) => Ok(info),
        Err(KsError::Expired(_)) => Err(invalid(-5, "EXPIRED")),
        Err(KsError::WrongPartner(_)) => Err(invalid(-2, "INVALID_PARTNER")),
        Err(KsError::BadSignature) | Err(KsError::Malformed(_)) => Err(invalid(-1, "INVALID_STR")),
    }
}

pub fn get_user(data: &Data, p: &Value) -> ApiResult {
    let id = text(&p["userId"]).unwrap_or_default();
    data.users
        .get(&id)
        .cloned()
        .ok_or_else(|| ApiError::new("INVALID_USER_ID", "Invalid user id"))
}

pub fn add_user(data: &mut Data, opts: &KalturaOptions, p: &Value) -> ApiResult {
    let user = &p["user"];
    let Some(id) = text(&user["id"]).filter(|i| !i.is_empty()) else {
        return Err(ApiError::new(
            "PROPERTY_VALIDATION_CANNOT_BE_NULL",
            "The property \"KalturaUser::id\" cannot be null",
        )
        .with_args(json!({"PROP_NAME": "KalturaUser::id"})));
    };
    if data.users.contains_key(&id) {
        return Err(ApiError::new(
            "DUPLICATE_USER_BY_ID",
            format!("User with id [{id}] already exists in system"),
        )
        .with_args(json!({"ID": id})));
    }
    let mut stored = json!({
        "objectType": "KalturaUser",
        "partnerId": opts.partner_id,
        "status": 1,
        "isAdmin": false,
        "createdAt": now(),
        "updatedAt": now(),
    });
    if let Value::Object(fields) = user {
        for (k, v) in fields {
            if k != "objectType" {
                stored[k] = v.clone();
            }
        }
    }
    data.users.insert(id, stored.clone());
    Ok(stored)
}
