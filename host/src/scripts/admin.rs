//! Changing a guild's rules (the API's script routes): checked as the host loads them, then
//! kept (in the rules folder, or on a shared database as a row written with its audit
//! record in one transaction and applied by every instance in version order) and audited.
//! A refused upload is audited by its digest, size and first lines, not its whole text.

use std::sync::Arc;

use serde_json::{Value, json};

use super::Rules;
use super::rules::{RuleInfo, rule_key};
use crate::config::admin::{Change, ChangeError, ConfigAdmin, audit_entry};
use crate::discord::model::Member;

/// Uploads (or replaces) a guild's rule.
pub async fn put(
    rules: &Arc<Rules>,
    admin: &ConfigAdmin,
    guild: &str,
    who: &Member,
    file: &str,
    source: &str,
) -> Result<RuleInfo, ChangeError> {
    let before = rules.source(guild, file).map(Value::String);
    let shared = admin.database().is_some();
    let (r, g, f, src) = (
        rules.clone(),
        guild.to_string(),
        file.to_string(),
        source.to_string(),
    );
    // Compiling runs the rule's top level: off the async workers. The rules folder is
    // written here; a shared database once the change is audited, below.
    let checked = tokio::task::spawn_blocking(move || match shared {
        true => r.check(&g, &f, &src).map(|(_, info)| info),
        false => r.put(&g, &f, &src),
    })
    .await
    .map_err(|e| ChangeError::Storage(e.to_string()))?;
    let after = match &checked {
        Ok(_) => json!(source),
        Err(_) => {
            use sha2::Digest;
            let start: String = source.chars().take(512).collect();
            json!({"sha256": hex::encode(sha2::Sha256::digest(source.as_bytes())),
                   "bytes": source.len(), "start": start})
        }
    };
    let change = Change {
        guild,
        who,
        action: "script.put",
        target: file,
        before,
        after: Some(after),
    };
    match checked {
        Ok(info) => {
            keep(admin, &change, Some(source)).await?;
            Ok(info)
        }
        Err(e) => {
            admin.audit(&change, &format!("invalid: {e}")).await;
            Err(ChangeError::Invalid(e))
        }
    }
}

/// Deletes a guild's rule; `false` if it had none of that name.
pub async fn delete(
    rules: &Arc<Rules>,
    admin: &ConfigAdmin,
    guild: &str,
    who: &Member,
    file: &str,
) -> Result<bool, ChangeError> {
    let before = rules.source(guild, file).map(Value::String);
    let had = match admin.database() {
        Some(_) => before.is_some(),
        None => rules.delete(guild, file).map_err(ChangeError::Storage)?,
    };
    if had {
        let change = Change {
            guild,
            who,
            action: "script.delete",
            target: file,
            before,
            after: None,
        };
        keep(admin, &change, None).await?;
    }
    Ok(had)
}

/// Records an accepted change: audited (the rules folder already holds it), or written
/// with its audit record to the shared database and applied here before the answer.
async fn keep(
    admin: &ConfigAdmin,
    change: &Change<'_>,
    source: Option<&str>,
) -> Result<(), ChangeError> {
    let Some(db) = admin.database() else {
        admin.audit(change, "ok").await;
        return Ok(());
    };
    let storage = |e: anyhow::Error| ChangeError::Storage(format!("{e:#}"));
    let name = rule_key(change.guild, change.target);
    db.store
        .put_rule(&name, Some(change.guild), source, audit_entry(change, "ok"))
        .await
        .map_err(storage)?;
    db.follower.catch_up().await.map_err(storage)
}
