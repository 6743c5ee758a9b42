//! Changing a guild's configuration from Discord (`/kaltura-config-*`) and the API: who may
//! (Administrator or Manage Server, or a role in `roles.config_admins`), what a change
//! means (set a key, reset a section, replace or merge-patch the override), validation
//! against the schema before anything is written, the atomic write, and the audit record
//! of every attempt, refusals included.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::guild::GuildConfigs;
use super::placeholders::placeholder_names;
use super::schema;
use crate::discord::guilds::GuildDirectory;
use crate::discord::model::Member;
use crate::store::{AuditLog, NewAuditEntry};

/// Top-level sections a guild may change (`$schema` is an editor hint, not a section).
pub const SECTIONS: &[&str] = &[
    "notifications",
    "commands",
    "roles",
    "plugins",
    "kaltura",
    "features",
    "rules",
];

/// Why a change was not made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ChangeError {
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Storage(String),
}

/// One change, or attempt, as the audit log records it.
pub struct Change<'a> {
    pub guild: &'a str,
    pub who: &'a Member,
    /// `config.update`, `script.put`, ...
    pub action: &'a str,
    /// A JSON path or a rule's name.
    pub target: &'a str,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

pub struct ConfigAdmin {
    dir: PathBuf,
    pub guilds: Arc<GuildConfigs>,
    audit: Arc<dyn AuditLog>,
    directory: Arc<GuildDirectory>,
    /// Where overrides are kept when instances share a database (else: files in `dir`).
    database: Option<SharedDatabase>,
}

/// Overrides and rules in the shared database: written with their audit entry, then
/// applied here by catching up (in version order, as every other instance applies them).
pub struct SharedDatabase {
    pub store: Arc<crate::store::postgres::PostgresStore>,
    pub follower: Arc<crate::cluster::changes::ChangeFollower>,
}

/// The audit record of a change.
pub fn audit_entry(c: &Change<'_>, outcome: &str) -> NewAuditEntry {
    NewAuditEntry {
        guild_id: c.guild.to_string(),
        actor: actor_label(c.who),
        action: c.action.to_string(),
        target: c.target.to_string(),
        before: c.before.clone(),
        after: c.after.clone(),
        outcome: outcome.to_string(),
    }
}

/// `discord:<id>` or `service:<name>` for the audit log.
pub fn actor_label(m: &Member) -> String {
    if m.user_id.starts_with("service:") {
        m.user_id.clone()
    } else {
        format!("discord:{}", m.user_id)
    }
}

impl ConfigAdmin {
    pub fn new(
        dir: PathBuf,
        guilds: Arc<GuildConfigs>,
        audit: Arc<dyn AuditLog>,
        directory: Arc<GuildDirectory>,
    ) -> Self {
        Self {
            dir,
            guilds,
            audit,
            directory,
            database: None,
        }
    }

    /// Keeps overrides in the shared database instead of files.
    pub fn in_database(mut self, shared: SharedDatabase) -> Self {
        self.database = Some(shared);
        self
    }

    /// The shared database changes are written to, when instances share one.
    pub fn database(&self) -> Option<&SharedDatabase> {
        self.database.as_ref()
    }

    pub fn audit_log(&self) -> &Arc<dyn AuditLog> {
        &self.audit
    }

    /// Whether `who` may change this guild's config and rules. Role names in
    /// `roles.config_admins` are matched through Discord's role list.
    pub async fn is_admin(&self, guild: &str, who: &Member) -> bool {
        if who.has_admin_permission() {
            return true;
        }
        let wanted = &self.guilds.guild(Some(guild)).typed.roles.config_admins;
        if wanted.is_empty() || who.roles.is_empty() {
            return false;
        }
        if who.roles.iter().any(|r| wanted.contains(r)) {
            return true;
        }
        let names = self.directory.role_names_if(Some(guild), true).await;
        who.roles.iter().any(|r| {
            names
                .get(r)
                .is_some_and(|n| wanted.iter().any(|w| w.eq_ignore_ascii_case(n)))
        })
    }

    /// Refuses and audits unless `who` is a guild admin.
    pub async fn authorize(
        &self,
        guild: &str,
        who: &Member,
        action: &str,
        target: &str,
    ) -> Result<(), ChangeError> {
        if self.is_admin(guild, who).await {
            return Ok(());
        }
        let reason = "only server admins (Administrator or Manage Server, or a role in roles.config_admins) may do this";
        let attempt = Change {
            guild,
            who,
            action,
            target,
            before: None,
            after: None,
        };
        self.audit(&attempt, &format!("refused: {reason}")).await;
        tracing::warn!(guild, actor = %actor_label(who), action, target, "configuration change refused: not a guild admin");
        Err(ChangeError::Forbidden(format!("Refused: {reason}.")))
    }

    /// Writes one audit record (a failure to write is logged, not fatal).
    pub async fn audit(&self, c: &Change<'_>, outcome: &str) {
        if let Err(e) = self.audit.add(audit_entry(c, outcome)).await {
            tracing::error!(error = %e, guild = c.guild, action = c.action, "audit record could not be written");
        }
    }

    /// The guild's effective config as written (placeholders shown, not filled), whole or
    /// one section.
    pub fn view(&self, guild: &str, section: Option<&str>) -> Result<Value, ChangeError> {
        let raw = self.guilds.guild(Some(guild)).raw.clone();
        match section {
            None => Ok(raw),
            Some(s) if SECTIONS.contains(&s) => Ok(raw.get(s).cloned().unwrap_or(Value::Null)),
            Some(s) => Err(unknown_section(s)),
        }
    }

    /// Validates, writes and audits a new override; `None` removes it.
    async fn commit(&self, c: Change<'_>, new_override: Option<Value>) -> Result<(), ChangeError> {
        let known = placeholder_names(&self.guilds.guild_override(c.guild));
        if let Some(o) = &new_override
            && !placeholder_names(o).is_subset(&known)
        {
            return Err(ChangeError::Invalid(
                "`{{VARIABLE}}` placeholders can only be written into the file by the operator"
                    .into(),
            ));
        }
        let checked = match self.guilds.check_override(c.guild, new_override) {
            Ok(checked) => checked,
            Err(e) if e.contains(": $") => {
                let why = explain(&e);
                self.audit(
                    &c,
                    &format!("invalid: {}", why.lines().next().unwrap_or("")),
                )
                .await;
                return Err(ChangeError::Invalid(why));
            }
            Err(e) => return Err(ChangeError::Storage(e)),
        };
        match &self.database {
            None => {
                self.guilds
                    .write_checked(&self.dir, checked)
                    .map_err(ChangeError::Storage)?;
                self.audit(&c, "ok").await;
            }
            // The row and its audit record in one transaction; then applied here in
            // version order, as every other instance applies it.
            Some(db) => {
                let storage = |e: anyhow::Error| ChangeError::Storage(format!("{e:#}"));
                db.store
                    .put_guild_config(c.guild, checked.raw(), audit_entry(&c, "ok"))
                    .await
                    .map_err(storage)?;
                db.follower.catch_up().await.map_err(storage)?;
            }
        }
        tracing::info!(guild = c.guild, actor = %actor_label(c.who), action = c.action, target = c.target, "guild configuration changed");
        Ok(())
    }

    /// Sets `section.key` (dotted) to a value typed as text: parsed as JSON unless the
    /// schema wants text there.
    pub async fn update(
        &self,
        guild: &str,
        who: &Member,
        section: &str,
        key: &str,
        value: &str,
    ) -> Result<(Value, Value), ChangeError> {
        if !SECTIONS.contains(&section) {
            return Err(unknown_section(section));
        }
        let path = format!("{section}.{}", key.trim_matches('.'));
        let parts: Vec<&str> = path.split('.').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(ChangeError::Invalid(format!("`{path}` is not a key path")));
        }
        let Some(expects) = schema::expectation(&path) else {
            return Err(ChangeError::Invalid(format!(
                "`{path}` is not a setting. {}",
                schema::expectation(section).unwrap_or_default()
            )));
        };
        let parsed = parse_value(&path, value);
        let mut over = self.guilds.guild_override(guild);
        let before = get_path(&self.guilds.guild(Some(guild)).raw, &parts).cloned();
        set_path(&mut over, &parts, parsed.clone());
        let target = format!("$.{path}");
        let change = Change {
            guild,
            who,
            action: "config.update",
            target: &target,
            before: before.clone(),
            after: Some(parsed.clone()),
        };
        self.commit(change, Some(over)).await.map_err(|e| match e {
            ChangeError::Invalid(m) => ChangeError::Invalid(format!("{m}\nThe schema: {expects}.")),
            other => other,
        })?;
        Ok((before.unwrap_or(Value::Null), parsed))
    }

    /// Drops a section from the guild's override (back to the defaults), or everything.
    pub async fn reset(
        &self,
        guild: &str,
        who: &Member,
        section: Option<&str>,
    ) -> Result<Value, ChangeError> {
        let over = self.guilds.guild_override(guild);
        match section {
            None => {
                let change = Change {
                    guild,
                    who,
                    action: "config.reset",
                    target: "$",
                    before: Some(over.clone()),
                    after: None,
                };
                self.commit(change, None).await?;
                Ok(over)
            }
            Some(s) if SECTIONS.contains(&s) => {
                let mut next = over.clone();
                let before = next.as_object_mut().and_then(|o| o.remove(s));
                let empty = next
                    .as_object()
                    .is_some_and(|o| o.keys().all(|k| k == "$schema"));
                let target = format!("$.{s}");
                let change = Change {
                    guild,
                    who,
                    action: "config.reset",
                    target: &target,
                    before: before.clone(),
                    after: None,
                };
                self.commit(change, (!empty).then_some(next)).await?;
                Ok(before.unwrap_or(Value::Null))
            }
            Some(s) => Err(unknown_section(s)),
        }
    }

    /// Replaces the guild's override (`PUT`).
    pub async fn replace(
        &self,
        guild: &str,
        who: &Member,
        new_override: Value,
    ) -> Result<(), ChangeError> {
        let change = Change {
            guild,
            who,
            action: "config.replace",
            target: "$",
            before: Some(self.guilds.guild_override(guild)),
            after: Some(new_override.clone()),
        };
        self.commit(change, Some(new_override)).await
    }

    /// Applies a JSON merge patch (RFC 7396: `null` deletes) to the override (`PATCH`).
    pub async fn patch(&self, guild: &str, who: &Member, patch: Value) -> Result<(), ChangeError> {
        let before = self.guilds.guild_override(guild);
        let mut next = before.clone();
        merge_patch(&mut next, &patch);
        let change = Change {
            guild,
            who,
            action: "config.patch",
            target: "$",
            before: Some(before),
            after: Some(patch),
        };
        self.commit(change, Some(next)).await
    }
}

fn unknown_section(s: &str) -> ChangeError {
    ChangeError::Invalid(format!(
        "`{s}` is not a section; the sections are {}",
        SECTIONS.join(", ")
    ))
}

/// A validation error (`file: $.path: reason` lines) without the file name, each with what
/// the schema expects at that path.
fn explain(e: &str) -> String {
    e.lines()
        .map(|line| {
            let at = line.find(": $").map(|i| &line[i + 2..]).unwrap_or(line);
            at.to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Text from a command, typed by what the schema expects at `path`.
pub fn parse_value(path: &str, text: &str) -> Value {
    let wants_text = schema::expected_types(path).is_some_and(|t| {
        t.iter().any(|t| t == "string") && !t.iter().any(|t| t != "string" && t != "null")
    });
    if wants_text {
        return Value::String(text.to_string());
    }
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

fn get_path<'v>(v: &'v Value, parts: &[&str]) -> Option<&'v Value> {
    parts.iter().try_fold(v, |node, p| node.get(*p))
}

fn set_path(v: &mut Value, parts: &[&str], new: Value) {
    let mut node = v;
    for p in &parts[..parts.len() - 1] {
        if !node.is_object() {
            *node = Value::Object(Map::new());
        }
        node = node
            .as_object_mut()
            .expect("made an object above")
            .entry(p.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    if !node.is_object() {
        *node = Value::Object(Map::new());
    }
    node.as_object_mut()
        .expect("made an object above")
        .insert(parts[parts.len() - 1].to_string(), new);
}

/// RFC 7396.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let t = target.as_object_mut().expect("made an object above");
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn admin() -> Member {
        Member {
            user_id: "5".into(),
            permissions: Some(crate::discord::permissions::MANAGE_GUILD.to_string()),
            ..Default::default()
        }
    }

    fn setup() -> (tempfile::TempDir, ConfigAdmin) {
        let dir = tempfile::tempdir().unwrap();
        let guilds = Arc::new(GuildConfigs::load(dir.path()).unwrap());
        let a = ConfigAdmin::new(
            dir.path().to_path_buf(),
            guilds,
            crate::store::Stores::in_memory().unwrap().audit,
            Arc::new(GuildDirectory::new(None)),
        );
        (dir, a)
    }

    #[test]
    fn values_are_typed_by_the_schema() {
        assert_eq!(parse_value("notifications.enabled", "false"), json!(false));
        // A channel id stays text although it looks like a number.
        assert_eq!(
            parse_value("notifications.channel", "910000000000000001"),
            json!("910000000000000001")
        );
        assert_eq!(
            parse_value("kaltura.session.expiry.video", "600"),
            json!(600)
        );
        assert_eq!(
            parse_value("roles.config_admins", "[\"Mods\"]"),
            json!(["Mods"])
        );
        assert_eq!(parse_value("notifications.enabled", "yes"), json!("yes"));
    }

    #[tokio::test]
    async fn updates_are_validated_written_and_audited() {
        let (dir, a) = setup();
        let (before, after) = a
            .update("9", &admin(), "notifications", "channel", "#news")
            .await
            .unwrap();
        assert_eq!((before, after), (Value::Null, json!("#news")));
        assert!(dir.path().join("guilds/9.json").exists());
        assert_eq!(
            a.view("9", Some("notifications")).unwrap()["channel"],
            "#news"
        );
        let err = a
            .update("9", &admin(), "notifications", "enabled", "yes")
            .await
            .unwrap_err();
        let ChangeError::Invalid(m) = err else {
            panic!()
        };
        assert!(
            m.contains("$.notifications.enabled") && m.contains("expects boolean"),
            "{m}"
        );
        let err = a
            .update("9", &admin(), "notifications", "enabeld", "true")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("is not a setting"), "{err}");
        let err = a.update("9", &admin(), "nope", "x", "1").await.unwrap_err();
        assert!(err.to_string().contains("not a section"));
        let err = a
            .update("9", &admin(), "notifications", "channel", "{{HOME}}")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("placeholders"), "{err}");
        a.reset("9", &admin(), Some("notifications")).await.unwrap();
        assert!(!dir.path().join("guilds/9.json").exists());
        let log = a.audit_log().list("9", 10, None).await.unwrap();
        assert_eq!(log.len(), 3, "the change, the invalid attempt, the reset");
        assert_eq!(log[0].action, "config.reset");
        assert!(
            log[1]
                .outcome
                .starts_with("invalid: $.notifications.enabled"),
            "{:?}",
            log[1]
        );
        assert_eq!(log[2].after, Some(json!("#news")));
    }

    #[tokio::test]
    async fn non_admins_are_refused_and_audited() {
        let (_dir, a) = setup();
        let nobody = Member {
            user_id: "6".into(),
            permissions: Some("0".into()),
            roles: vec!["77".into()],
            ..Default::default()
        };
        let err = a
            .authorize("9", &nobody, "config.update", "$.notifications")
            .await
            .unwrap_err();
        assert!(matches!(err, ChangeError::Forbidden(_)));
        let log = a.audit_log().list("9", 10, None).await.unwrap();
        assert!(log[0].outcome.starts_with("refused") && log[0].actor == "discord:6");
        // A configured role by id makes an admin.
        a.replace("9", &admin(), json!({"roles": {"config_admins": ["77"]}}))
            .await
            .unwrap();
        assert!(a.is_admin("9", &nobody).await);
    }

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let mut t = json!({"a": {"b": 1, "c": 2}, "d": [1]});
        merge_patch(&mut t, &json!({"a": {"b": null, "e": 3}, "d": [2]}));
        assert_eq!(t, json!({"a": {"c": 2, "e": 3}, "d": [2]}));
    }
}
