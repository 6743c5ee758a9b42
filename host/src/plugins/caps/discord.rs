//! The `discord` capability: messages, edits, follow-ups and reactions, only in the guild
//! (or conversation) the plugin was called for, channel messages through the outbox.

use std::sync::Arc;

use crate::config::guild::GuildConfigs;
use crate::config::policy::Policy;
use crate::delivery::Outbox;
use crate::discord::guilds::GuildDirectory;
use crate::discord::response::message_json;
use crate::discord::rest::{DiscordRest, RestError};
use crate::plugins::bindings::kaltura_discord::plugin::discord::Host;
use crate::plugins::bindings::types::{CapError, Capability, Message};
use crate::plugins::state::PluginState;
use crate::store::NewMessage;
use crate::store::tokens::InteractionTokens;

/// What the `discord` capability needs.
pub struct DiscordCap {
    /// Discord REST, when an application id (and, for channel messages, a bot token) is set.
    pub rest: Option<Arc<DiscordRest>>,
    /// Interaction tokens the host holds for plugins (they follow up by interaction id).
    pub tokens: Arc<dyn InteractionTokens>,
    /// Guilds' channels as Discord reports them: a plugin posts only in its guild.
    pub directory: Arc<GuildDirectory>,
    /// The guilds' configuration (a guild may narrow a plugin to some channels).
    pub guilds: Arc<GuildConfigs>,
    /// Channel messages go out durably, ordered and paced like every message the host posts.
    pub outbox: Arc<Outbox>,
}

fn snowflake(what: &str, id: &str) -> Result<(), CapError> {
    if !crate::discord::model::is_snowflake(id) {
        return Err(CapError::Invalid(format!(
            "{what} `{id}` is not a Discord id"
        )));
    }
    Ok(())
}

fn rest_err(e: RestError) -> CapError {
    match e {
        RestError::NotConfigured(why) => CapError::Unavailable(why.into()),
        e @ RestError::Throttled => CapError::Unavailable(e.to_string()),
        other => CapError::Failed(other.to_string()),
    }
}

/// The guild may narrow a plugin to some channels (`plugins.<name>.channels`, ids or
/// names). Owned arguments: the plugin's state is not shared across the awaits.
async fn channel_allowed(
    caps: Arc<crate::plugins::caps::Capabilities>,
    plugin: Arc<str>,
    guild: Option<String>,
    channel_id: String,
) -> Result<(), CapError> {
    let Some(guild) = guild else {
        return Ok(());
    };
    let cfg = caps.discord.guilds.guild(Some(&guild));
    let directory = &caps.discord.directory;
    Policy::of(&cfg.typed)
        .may_post(&plugin, &channel_id, |c| {
            let guild = &guild;
            async move { directory.resolve_channel(guild, c).await.ok() }
        })
        .await
        .map_err(|d| CapError::Denied(d.to_string()))
}

/// Every channel a plugin posts to, edits in or reacts in belongs to the guild it was
/// called for (checked against Discord's channel list); outside a guild, only the
/// conversation it was called from.
async fn channel_of_scope(
    caps: Arc<crate::plugins::caps::Capabilities>,
    guild: Option<String>,
    scope_channel: Option<String>,
    channel_id: String,
) -> Result<(), CapError> {
    use crate::discord::guilds::ChannelError;
    match guild {
        Some(g) => match caps
            .discord
            .directory
            .resolve_channel(&g, &channel_id)
            .await
        {
            Ok(_) => Ok(()),
            Err(e @ (ChannelError::Foreign(_) | ChannelError::Unknown(_))) => {
                Err(CapError::Denied(e.to_string()))
            }
            Err(ChannelError::Rest(e)) => Err(rest_err(e)),
        },
        None if scope_channel.as_deref() == Some(channel_id.as_str()) => Ok(()),
        None => Err(CapError::Denied(format!(
            "channel {channel_id} is not this conversation: outside a server a plugin acts only where it was called"
        ))),
    }
}

/// How long `send-message` waits for Discord's message id (the message is queued either way).
const SEND_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

impl PluginState {
    fn discord(&self) -> Result<Arc<DiscordRest>, CapError> {
        self.require(Capability::Discord)?;
        self.caps.discord.rest.clone().ok_or_else(|| {
            CapError::Unavailable(
                "Discord is not configured on this host (DISCORD_APPLICATION_ID)".into(),
            )
        })
    }

    /// See [`channel_of_scope`]; a future that owns its arguments (the state is not
    /// shared across awaits).
    fn own_channel(
        &self,
        channel_id: &str,
    ) -> impl Future<Output = Result<(), CapError>> + Send + use<> {
        channel_of_scope(
            self.caps.clone(),
            self.scope.guild_id.clone(),
            self.scope.channel_id.clone(),
            channel_id.to_string(),
        )
    }

    fn render(&self, message: &Message) -> Result<serde_json::Value, CapError> {
        message_json(&self.plugin, message).map_err(CapError::Invalid)
    }
}

impl Host for PluginState {
    async fn send_message(
        &mut self,
        channel_id: String,
        message: Message,
    ) -> Result<String, CapError> {
        self.discord()?;
        snowflake("channel", &channel_id)?;
        self.own_channel(&channel_id).await?;
        channel_allowed(
            self.caps.clone(),
            self.plugin.clone(),
            self.scope.guild_id.clone(),
            channel_id.clone(),
        )
        .await?;
        let mut body = self.render(&message)?;
        body.as_object_mut()
            .expect("message is an object")
            .remove("flags");
        // Through the outbox: durable, ordered per channel, rate limited.
        let outbox = self.caps.discord.outbox.clone();
        let message = NewMessage {
            guild_id: self.scope.guild_id.clone().unwrap_or_default(),
            channel: channel_id,
            body,
            source: format!("plugin:{}", self.plugin),
        };
        outbox
            .send_and_wait(message, SEND_WAIT)
            .await
            .map_err(CapError::Failed)
    }

    async fn edit_message(
        &mut self,
        channel_id: String,
        message_id: String,
        message: Message,
    ) -> Result<(), CapError> {
        let rest = self.discord()?;
        snowflake("channel", &channel_id)?;
        snowflake("message", &message_id)?;
        self.own_channel(&channel_id).await?;
        let body = self.render(&message)?;
        rest.edit_message(&channel_id, &message_id, &body)
            .await
            .map_err(rest_err)?;
        Ok(())
    }

    async fn follow_up(
        &mut self,
        interaction_id: String,
        message: Message,
    ) -> Result<String, CapError> {
        let rest = self.discord()?;
        let held = self.caps.discord.tokens.get(&interaction_id, &self.plugin).await.ok_or_else(|| {
            CapError::Invalid(format!(
                "interaction {interaction_id} was not handled by this plugin in the last 15 minutes"
            ))
        })?;
        if !held.answered {
            return Err(CapError::Invalid(format!(
                "interaction {interaction_id} has not been answered yet: return the response first, then follow up (after `defer`, or from a later call)"
            )));
        }
        let token = held.token;
        let body = self.render(&message)?;
        let sent = rest.follow_up(&token, &body).await.map_err(rest_err)?;
        Ok(sent["id"].as_str().unwrap_or_default().to_string())
    }

    async fn add_reaction(
        &mut self,
        channel_id: String,
        message_id: String,
        emoji: String,
    ) -> Result<(), CapError> {
        let rest = self.discord()?;
        snowflake("channel", &channel_id)?;
        snowflake("message", &message_id)?;
        if emoji.is_empty() || emoji.len() > 100 {
            return Err(CapError::Invalid("emoji must be 1-100 bytes".into()));
        }
        self.own_channel(&channel_id).await?;
        rest.add_reaction(&channel_id, &message_id, &emoji)
            .await
            .map_err(rest_err)?;
        Ok(())
    }
}
