//! Every "may this happen in this guild?" the host answers before a guest or rule runs:
//! whether a plugin or command is on and open to the member's roles, where a plugin may
//! post, which plugins hear events, whether rules and Kaltura are on, whether a control may
//! be pressed, and whether the member or guild is going too fast. A refusal is a typed
//! [`Denied`]: its `Display` is the sentence the person reads, its [`Denied::kind`] the
//! metric label (`kd_policy_denials_total{reason}`).

use std::future::Future;

use super::schema::{ChannelRef, GuildConfig};
use crate::store::rates::{CommandRates, Limited};
use crate::telemetry::METRICS;

/// Why the guild's configuration (or its rate limits) refuses something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// `plugins.<name>.enabled` is false.
    PluginDisabled { plugin: String },
    /// `plugins.<name>.allowed_roles` names none of the member's roles.
    PluginRoles { plugin: String },
    /// `commands.<name>.enabled` is false.
    CommandDisabled { command: String },
    /// `commands.<name>.allowed_roles` names none of the member's roles.
    CommandRoles { command: String },
    /// `plugins.<name>.channels` does not list the channel.
    Channel {
        plugin: String,
        channels: Vec<ChannelRef>,
    },
    /// A control of a command whose default permissions the member lacks.
    ControlPermissions { command: String },
    /// The member's own per-minute allowance is spent.
    UserRate { retry_secs: u64 },
    /// The guild's per-minute allowance is spent.
    GuildRate { retry_secs: u64 },
    /// A guild-wide switch is off.
    FeatureOff(Feature),
}

/// The guild-wide switches a decision can hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    /// `features.plugin_events`.
    PluginEvents,
    /// `features.rules`.
    Rules,
    /// `kaltura.enabled`.
    Kaltura,
}

impl Denied {
    /// The metric label: one per variant.
    pub fn kind(&self) -> &'static str {
        match self {
            Denied::PluginDisabled { .. } => "plugin_disabled",
            Denied::PluginRoles { .. } => "plugin_roles",
            Denied::CommandDisabled { .. } => "command_disabled",
            Denied::CommandRoles { .. } => "command_roles",
            Denied::Channel { .. } => "channel",
            Denied::ControlPermissions { .. } => "control_permissions",
            Denied::UserRate { .. } => "user_rate",
            Denied::GuildRate { .. } => "guild_rate",
            Denied::FeatureOff(Feature::PluginEvents) => "plugin_events_off",
            Denied::FeatureOff(Feature::Rules) => "rules_off",
            Denied::FeatureOff(Feature::Kaltura) => "kaltura_off",
        }
    }
}

impl std::fmt::Display for Denied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Denied::PluginDisabled { plugin } => {
                write!(f, "The `{plugin}` plugin is disabled on this server.")
            }
            Denied::PluginRoles { plugin } => {
                write!(f, "Your roles may not use the `{plugin}` plugin here.")
            }
            Denied::CommandDisabled { command } => {
                write!(f, "/{command} is disabled on this server.")
            }
            Denied::CommandRoles { command } => {
                write!(f, "Your roles may not use /{command} here.")
            }
            Denied::Channel { plugin, channels } => write!(
                f,
                "this server allows the `{plugin}` plugin to post only in {}",
                channels.join(", ")
            ),
            Denied::ControlPermissions { command } => write!(
                f,
                "You need the permissions of /{command} to use this control."
            ),
            Denied::UserRate { retry_secs } => {
                write!(f, "You are going too fast: try again in {retry_secs} s.")
            }
            Denied::GuildRate { retry_secs } => write!(
                f,
                "This server is using the bot too fast: try again in {retry_secs} s."
            ),
            Denied::FeatureOff(Feature::PluginEvents) => {
                write!(f, "Plugin events are off on this server.")
            }
            Denied::FeatureOff(Feature::Rules) => write!(f, "Rules are off on this server."),
            Denied::FeatureOff(Feature::Kaltura) => {
                write!(f, "Kaltura features are off on this server.")
            }
        }
    }
}

impl std::error::Error for Denied {}

/// Counts the refusal (every denial leaves through here) and returns it.
fn deny<T>(d: Denied) -> Result<T, Denied> {
    METRICS.policy_denials.with_label_values(&[d.kind()]).inc();
    Err(d)
}

/// A guild-wide switch: off is a refusal.
fn switch(on: bool, feature: Feature) -> Result<(), Denied> {
    if on {
        Ok(())
    } else {
        deny(Denied::FeatureOff(feature))
    }
}

/// The decisions one guild's configuration makes. Outside a guild the defaults apply.
#[derive(Clone, Copy)]
pub struct Policy<'a> {
    cfg: &'a GuildConfig,
}

impl<'a> Policy<'a> {
    pub fn of(cfg: &'a GuildConfig) -> Self {
        Self { cfg }
    }

    /// May a member with `roles` use `plugin` (and its `command`, when there is one)?
    pub fn may_run(
        &self,
        plugin: &str,
        command: Option<&str>,
        roles: &[String],
    ) -> Result<(), Denied> {
        if let Some(p) = self.cfg.plugins.get(plugin) {
            if p.enabled == Some(false) {
                return deny(Denied::PluginDisabled {
                    plugin: plugin.into(),
                });
            }
            if !roles_allow(&p.allowed_roles, roles) {
                return deny(Denied::PluginRoles {
                    plugin: plugin.into(),
                });
            }
        }
        if let Some(cmd) = command
            && let Some(c) = self.cfg.commands.get(cmd)
        {
            if c.enabled == Some(false) {
                return deny(Denied::CommandDisabled {
                    command: cmd.into(),
                });
            }
            if !roles_allow(&c.allowed_roles, roles) {
                return deny(Denied::CommandRoles {
                    command: cmd.into(),
                });
            }
        }
        Ok(())
    }

    /// May plugins hear events of `topic` here at all (decided once per guild)?
    pub fn plugins_hear(&self, topic: &str) -> Result<(), Denied> {
        switch(self.cfg.features.plugin_events, Feature::PluginEvents)?;
        if topic.starts_with("kaltura.") {
            self.kaltura_on()?;
        }
        Ok(())
    }

    /// May `plugin` hear events here (once [`Policy::plugins_hear`] the topic)? Events
    /// have no member, so a plugin narrowed to some roles hears none.
    pub fn may_receive(&self, plugin: &str) -> Result<(), Denied> {
        self.may_run(plugin, None, &[])
    }

    /// Are the guild's rules on?
    pub fn rules_on(&self) -> Result<(), Denied> {
        switch(self.cfg.features.rules, Feature::Rules)
    }

    /// Does the rule `name` run here (rules on and the rule not switched off)?
    pub fn rule_runs(&self, name: &str) -> bool {
        self.cfg.features.rules && !self.cfg.rules.disabled.iter().any(|d| d == name)
    }

    /// Are Kaltura features on here?
    pub fn kaltura_on(&self) -> Result<(), Denied> {
        switch(self.cfg.kaltura.enabled, Feature::Kaltura)
    }

    /// May `plugin` post, edit or react in `channel_id`? The guild may narrow a plugin to
    /// some channels (ids or names); `resolve` turns one into an id (None: unknown).
    pub async fn may_post<F, Fut>(
        &self,
        plugin: &str,
        channel_id: &str,
        resolve: F,
    ) -> Result<(), Denied>
    where
        F: Fn(&'a ChannelRef) -> Fut,
        Fut: Future<Output = Option<String>>,
    {
        let Some(p) = self.cfg.plugins.get(plugin) else {
            return Ok(());
        };
        if p.channels.is_empty() {
            return Ok(());
        }
        for c in &p.channels {
            if resolve(c).await.as_deref() == Some(channel_id) {
                return Ok(());
            }
        }
        deny(Denied::Channel {
            plugin: plugin.into(),
            channels: p.channels.clone(),
        })
    }
}

/// May a member with `member_permissions` press a control of `command`, whose
/// `default_member_permissions` are `required`? Discord enforces those for the command
/// only; the host enforces them for its controls ("0": administrators only).
pub fn may_press(
    command: &str,
    required: Option<&str>,
    member_permissions: Option<&str>,
) -> Result<(), Denied> {
    use crate::discord::permissions;
    let Some(required) = required.and_then(|p| p.parse::<u64>().ok()) else {
        return Ok(());
    };
    if permissions::covers(permissions::parse(member_permissions), required) {
        Ok(())
    } else {
        deny(Denied::ControlPermissions {
            command: command.into(),
        })
    }
}

/// May this member (and their guild) run one more command now?
pub async fn may_go(
    rates: &dyn CommandRates,
    user: Option<&str>,
    guild: Option<&str>,
) -> Result<(), Denied> {
    match rates.take(user, guild).await {
        Ok(()) => Ok(()),
        Err(Limited::User { retry_secs }) => deny(Denied::UserRate { retry_secs }),
        Err(Limited::Guild { retry_secs }) => deny(Denied::GuildRate { retry_secs }),
    }
}

/// An empty list allows everyone; otherwise one of the member's roles must be in it.
fn roles_allow(allowed: &[String], roles: &[String]) -> bool {
    allowed.is_empty() || allowed.iter().any(|a| roles.contains(a))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg(v: serde_json::Value) -> GuildConfig {
        super::super::schema::typed(&v).unwrap()
    }

    #[test]
    fn plugin_and_command_roles() {
        let c = cfg(json!({
            "plugins": {"off": {"enabled": false}, "mods": {"allowed_roles": ["42"]}},
            "commands": {"ban": {"allowed_roles": ["7"]}, "gone": {"enabled": false}}
        }));
        let p = Policy::of(&c);
        let off = p.may_run("off", None, &[]).unwrap_err();
        assert_eq!(
            off,
            Denied::PluginDisabled {
                plugin: "off".into()
            }
        );
        assert!(off.to_string().contains("disabled"));
        assert_eq!(
            p.may_run("mods", None, &["1".into()]).unwrap_err().kind(),
            "plugin_roles"
        );
        assert!(p.may_run("mods", None, &["42".into()]).is_ok());
        assert_eq!(
            p.may_run("x", Some("ban"), &["8".into()])
                .unwrap_err()
                .to_string(),
            "Your roles may not use /ban here."
        );
        assert!(p.may_run("x", Some("ban"), &["7".into()]).is_ok());
        assert_eq!(
            p.may_run("x", Some("gone"), &[]).unwrap_err().to_string(),
            "/gone is disabled on this server."
        );
        assert!(p.may_run("x", Some("free"), &[]).is_ok());
    }

    #[test]
    fn events_need_plugin_events_and_kaltura_for_kaltura_topics() {
        let c = cfg(
            json!({"kaltura": {"enabled": false}, "plugins": {"mods": {"allowed_roles": ["1"]}}}),
        );
        let p = Policy::of(&c);
        assert_eq!(
            p.plugins_hear("kaltura.entry_ready").unwrap_err(),
            Denied::FeatureOff(Feature::Kaltura)
        );
        assert!(p.plugins_hear("discord.member_join").is_ok());
        assert!(p.may_receive("a").is_ok());
        assert_eq!(p.may_receive("mods").unwrap_err().kind(), "plugin_roles");
        let off = cfg(json!({"features": {"plugin_events": false}}));
        assert_eq!(
            Policy::of(&off)
                .plugins_hear("discord.member_join")
                .unwrap_err(),
            Denied::FeatureOff(Feature::PluginEvents)
        );
    }

    #[test]
    fn rules_switch_and_disabled_rules() {
        let c = cfg(json!({"rules": {"disabled": ["global/a.rhai"]}}));
        let p = Policy::of(&c);
        assert!(p.rules_on().is_ok());
        assert!(!p.rule_runs("global/a.rhai"));
        assert!(p.rule_runs("global/b.rhai"));
        let off = cfg(json!({"features": {"rules": false}}));
        assert!(Policy::of(&off).rules_on().is_err());
        assert!(!Policy::of(&off).rule_runs("global/b.rhai"));
    }

    #[tokio::test]
    async fn posting_is_narrowed_to_the_listed_channels() {
        let c = cfg(json!({"plugins": {"p": {"channels": ["#news", "9"]}}}));
        let p = Policy::of(&c);
        let resolve = |c: &ChannelRef| {
            let id = match c.as_str() {
                "#news" => Some("5".to_string()),
                "9" => Some("9".to_string()),
                _ => None,
            };
            async move { id }
        };
        assert!(p.may_post("p", "5", resolve).await.is_ok());
        assert!(p.may_post("p", "9", resolve).await.is_ok());
        let no = p.may_post("p", "6", resolve).await.unwrap_err();
        assert_eq!(
            no.to_string(),
            "this server allows the `p` plugin to post only in #news, 9"
        );
        assert!(p.may_post("other", "6", resolve).await.is_ok());
    }

    #[test]
    fn controls_keep_their_commands_permissions() {
        assert!(may_press("ban", None, None).is_ok());
        assert!(may_press("ban", Some("4"), Some("4")).is_ok());
        assert!(may_press("ban", Some("4"), Some("8")).is_ok()); // Administrator
        assert_eq!(
            may_press("ban", Some("0"), Some("4"))
                .unwrap_err()
                .to_string(),
            "You need the permissions of /ban to use this control."
        );
    }
}
