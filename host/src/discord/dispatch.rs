//! One dispatcher for both transports: route the interaction to its plugin, enforce the
//! guild's policy and rate limits in the host before any guest runs, call the guest, and
//! auto-defer when it is still running near Discord's 3-second limit.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::oneshot;
use tracing::Instrument;

use super::command_versions;
use super::host_commands::HostCommands;
use super::model::{self, Interaction};
use super::response::{self, Answering, Callback, EPHEMERAL};
use super::rest::DiscordRest;
use crate::config::guild::GuildConfigs;
use crate::config::policy::{self, Denied, Policy};
use crate::plugins::bindings::types::Capability;
use crate::plugins::{Call, CallScope, LoadedPlugin, Registry};
use crate::store::SharedState;
use crate::store::launches::Launches;
use crate::store::rates::CommandRates;
use crate::store::tokens::InteractionTokens;
use crate::store::voice::VoiceStates;
use crate::telemetry::METRICS;

/// A guest call in progress, producing the interaction callback.
type GuestCall = std::pin::Pin<Box<dyn Future<Output = Callback> + Send>>;

/// Where and by whom a control was pressed, for an Activity it may launch.
struct Launching {
    guild: Option<String>,
    channel: Option<String>,
    user: Option<String>,
    custom_id: String,
}

impl From<&Interaction> for Launching {
    fn from(ix: &Interaction) -> Self {
        Self {
            guild: ix.guild_id.clone(),
            channel: ix.channel_id.clone(),
            user: ix.invoker().map(|u| u.id.clone()),
            custom_id: ix.custom_id().unwrap_or_default().to_string(),
        }
    }
}

/// How long a guest may run before the host acknowledges with a deferred response.
pub const DEFER_AFTER: Duration = Duration::from_millis(2500);

/// Fired by the transport once the initial response has been handed to Discord; deferred
/// results wait for it so a follow-up never overtakes its own acknowledgement.
pub type Acked = oneshot::Receiver<()>;

/// How LAUNCH_ACTIVITY answers are handled.
#[derive(Debug, Clone, Default)]
pub struct ActivityLaunch {
    /// The app has Activities (`DISCORD_ACTIVITIES`): launch; otherwise answer with a link.
    pub enabled: bool,
    /// Where people reach this host (`KD_PUBLIC_URL`), for the link.
    pub public_url: String,
}

pub struct Dispatcher {
    pub registry: Arc<Registry>,
    guilds: Arc<GuildConfigs>,
    rest: Option<Arc<DiscordRest>>,
    /// Tokens of interactions plugins handle, for their follow-ups.
    tokens: Arc<dyn InteractionTokens>,
    /// Who is in voice (an Activity launches only there).
    voice: Arc<dyn VoiceStates>,
    /// Launches waiting for their Activity.
    launches: Arc<dyn Launches>,
    /// Command allowances per member and guild.
    rates: Arc<dyn CommandRates>,
    activity: ActivityLaunch,
    defer_after: Duration,
    /// Commands the host answers itself (guild config, guild rules).
    host: Arc<HostCommands>,
}

impl Dispatcher {
    pub fn new(
        registry: Arc<Registry>,
        guilds: Arc<GuildConfigs>,
        rest: Option<Arc<DiscordRest>>,
        shared: &SharedState,
        host: Arc<HostCommands>,
        activity: ActivityLaunch,
    ) -> Self {
        Self {
            registry,
            guilds,
            rest,
            tokens: shared.tokens.clone(),
            voice: shared.voice.clone(),
            launches: shared.launches.clone(),
            rates: shared.rates.clone(),
            activity,
            defer_after: DEFER_AFTER,
            host,
        }
    }

    /// The host's own answer, when it (not a plugin) owns this slash command.
    fn host_command(&self, ix: &Interaction) -> Option<Arc<HostCommands>> {
        let host = &self.host;
        let name = ix.command_name()?;
        let plugin_owned = self
            .registry
            .snapshot()
            .command_owner(name, ix.command_kind())
            .is_some();
        (!plugin_owned && ix.command_kind() == 1 && host.owns(ix.guild_id.as_deref(), name))
            .then(|| host.clone())
    }

    /// Handles one interaction and returns the initial response. If the guest is slow,
    /// the response is a deferral and the result is delivered later through REST.
    pub async fn handle(self: &Arc<Self>, ix: Interaction, acked: Acked) -> Callback {
        let answering = match ix.kind {
            model::PING => return Callback::Pong,
            model::APPLICATION_COMMAND => Answering::Command,
            model::MESSAGE_COMPONENT => Answering::Component,
            model::AUTOCOMPLETE => Answering::Autocomplete,
            model::MODAL_SUBMIT => Answering::Modal,
            other => {
                return response::error_reply(
                    Answering::Command,
                    &format!("This bot does not handle interactions of type {other}."),
                );
            }
        };
        if answering == Answering::Command
            && let Some(host) = self.host_command(&ix)
        {
            if let Err(denied) = self.rate_limit(&ix).await {
                return response::error_reply(answering, &denied.to_string());
            }
            let mut call = host.run(ix.clone());
            return tokio::select! {
                done = &mut call => match done {
                    Callback::Files { .. } => self.files_after_ack(ix, done, acked),
                    done => done,
                },
                _ = tokio::time::sleep(self.defer_after) => self.defer(ix, answering, "rules".into(), call, acked),
            };
        }
        match self.route(&ix, answering).await {
            Ok(Routed {
                plugin,
                call,
                notices,
            }) => {
                self.run_plugin(ix, answering, plugin, call, notices, acked)
                    .await
            }
            Err(refusal) => response::error_reply(answering, &refusal.to_string()),
        }
    }

    /// Calls the guest, deferring if it is still running near the 3-second mark.
    async fn run_plugin(
        self: &Arc<Self>,
        ix: Interaction,
        answering: Answering,
        plugin: Arc<LoadedPlugin>,
        call: Call,
        notices: Vec<String>,
        acked: Acked,
    ) -> Callback {
        let name = plugin.name.clone();
        let scope = CallScope::from(&ix);
        // Only plugins that may call `discord` can follow up; nobody else needs the token.
        let tokens = plugin
            .grants
            .allows(Capability::Discord)
            .then(|| self.tokens.clone());
        if let Some(t) = &tokens {
            t.insert(&ix.id, &ix.token, &name).await;
        }
        let id = ix.id.clone();
        let launch = Launching::from(&ix);
        let rt = self.registry.runtime.clone();
        // Run the guest in this task; only if it outlives the defer window does it move to
        // a task of its own (most calls never pay for a spawn).
        let mut guest: GuestCall = Box::pin(async move {
            let out = plugin.call(&rt, scope, call).await;
            let answer = response::render(&plugin.name, answering, out).callback;
            command_versions::with_notices(answer, &notices)
        });
        let first = tokio::select! {
            done = &mut guest => done,
            _ = tokio::time::sleep(self.defer_after) => self.defer(ix, answering, name, guest, acked),
        };
        if let Some(t) = tokens {
            t.mark_answered(&id).await;
        }
        if matches!(first, Callback::LaunchActivity) {
            return self.launch(launch, first).await;
        }
        first
    }

    /// Keeps what the launch was for; without Activities, answers with a link instead.
    async fn launch(&self, l: Launching, answer: Callback) -> Callback {
        if self.activity.enabled
            && let (Some(g), Some(u)) = (&l.guild, &l.user)
            && self.voice.in_voice(g, u).await == Some(false)
        {
            return response::error_reply(
                Answering::Component,
                "Join a voice channel first, then press Watch Together again: the Activity opens in your voice channel.",
            );
        }
        if let (Some(c), Some(u)) = (&l.channel, &l.user)
            && !l.custom_id.is_empty()
        {
            self.launches.record(c, u, &l.custom_id).await;
        }
        if self.activity.enabled {
            answer
        } else {
            super::launches::link_instead(&self.activity.public_url, &l.custom_id)
        }
    }

    /// Finds the plugin and checks policy, rate limits and deprecations.
    async fn route(&self, ix: &Interaction, answering: Answering) -> Result<Routed, Refusal> {
        let set = self.registry.snapshot();
        let (plugin, command) = match answering {
            Answering::Command | Answering::Autocomplete => {
                let name = ix.command_name().ok_or(Refusal::NoName)?;
                let p = set
                    .command_owner(name, ix.command_kind())
                    .ok_or_else(|| Refusal::Unprovided(name.into()))?;
                (p.clone(), Some(name))
            }
            Answering::Component | Answering::Modal => {
                let id = ix.custom_id().unwrap_or_default();
                let (owner, own_id) =
                    response::split_custom_id(id).ok_or(Refusal::ForeignControl)?;
                let p = set
                    .get(owner)
                    .ok_or_else(|| Refusal::NotLoaded(owner.into()))?;
                // A control whose id starts with one of its plugin's commands is held to
                // that command's permissions: a button must not bypass them.
                let command = controlling_command(p, own_id);
                if let Some(def) = command {
                    policy::may_press(
                        &def.name,
                        def.default_member_permissions.as_deref(),
                        ix.member.as_ref().and_then(|m| m.permissions.as_deref()),
                    )?;
                }
                (p.clone(), command.map(|d| d.name.as_str()))
            }
        };
        let cfg = self.guilds.guild(ix.guild_id.as_deref());
        Policy::of(&cfg.typed).may_run(&plugin.name, command, ix.roles())?;
        if answering != Answering::Autocomplete {
            self.rate_limit(ix).await?;
        }
        let own_id = |ix: &Interaction| {
            response::split_custom_id(ix.custom_id().unwrap_or_default())
                .map(|(_, id)| id.to_string())
                .unwrap_or_default()
        };
        let call = match answering {
            Answering::Command => Call::Command(ix.command_input().map_err(Refusal::Input)?),
            Answering::Autocomplete => {
                Call::Autocomplete(ix.command_input().map_err(Refusal::Input)?)
            }
            Answering::Component => {
                Call::Component(ix.component_input(&own_id(ix)).map_err(Refusal::Input)?)
            }
            Answering::Modal => Call::Modal(ix.modal_input(&own_id(ix)).map_err(Refusal::Input)?),
        };
        // A command (or option) past its sunset is refused; one before it gets a notice.
        let notices = match (answering, command) {
            (Answering::Command, Some(name)) => {
                let met = command_versions::met(&plugin.deprecations, name, &ix.data);
                command_versions::verdict(&met, command_versions::today())
                    .map_err(Refusal::Retired)?
            }
            _ => Vec::new(),
        };
        Ok(Routed {
            plugin,
            call,
            notices,
        })
    }

    async fn rate_limit(&self, ix: &Interaction) -> Result<(), Denied> {
        let user = ix.invoker().map(|u| u.id.as_str());
        policy::may_go(self.rates.as_ref(), user, ix.guild_id.as_deref()).await
    }

    /// A message with files: acknowledged now (ephemeral as the message is), sent as a
    /// follow-up once the acknowledgement is out.
    fn files_after_ack(&self, ix: Interaction, answer: Callback, acked: Acked) -> Callback {
        let ephemeral = matches!(&answer, Callback::Files { data, .. } if is_ephemeral(data));
        let Some(rest) = self.rest.clone() else {
            return response::error_reply(
                Answering::Command,
                "Files cannot be sent: this host has no Discord application configured.",
            );
        };
        tokio::spawn(
            async move {
                let _ = acked.await;
                if let Err(e) =
                    deliver_late(&rest, &ix.token, Answering::Command, "host", answer).await
                {
                    tracing::warn!(error = %e, "could not send a message with files");
                }
            }
            .in_current_span(),
        );
        Callback::DeferMessage {
            ephemeral: Some(ephemeral),
        }
    }

    /// The guest is still running: acknowledge now and deliver its answer when it comes.
    fn defer(
        self: &Arc<Self>,
        ix: Interaction,
        answering: Answering,
        plugin: Arc<str>,
        guest: GuestCall,
        acked: Acked,
    ) -> Callback {
        if answering == Answering::Autocomplete {
            // Autocomplete cannot be deferred: answer with no suggestions (dropping the
            // guest call cancels it).
            return response::no_choices();
        }
        let Some(rest) = self.rest.clone() else {
            return response::error_reply(
                answering,
                &format!("The `{plugin}` plugin took too long to answer."),
            );
        };
        // The guest keeps running on its own task while the acknowledgement goes out.
        // Both tasks keep the request's span, so their log lines carry its request id.
        let guest = tokio::spawn(guest.in_current_span());
        tokio::spawn(
            async move {
            let _ = acked.await;
            let answer = guest.await.unwrap_or_else(|e| {
                response::error_reply(answering, &format!("The `{plugin}` plugin failed: {e}"))
            });
            if let Err(e) = deliver_late(&rest, &ix.token, answering, &plugin, answer).await {
                tracing::warn!(plugin = %plugin, error = %e, "could not deliver a deferred answer");
            }
        }
            .in_current_span(),
        );
        match answering {
            Answering::Component | Answering::Modal => Callback::DeferUpdate,
            _ => Callback::DeferMessage { ephemeral: None },
        }
    }
}

/// Why an interaction reaches no guest; the text is what the member reads.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("The command has no name.")]
    NoName,
    #[error("/{0} is not available right now: no loaded plugin provides it.")]
    Unprovided(String),
    #[error("This control is not from a plugin of this bot.")]
    ForeignControl,
    #[error("This control belongs to the `{0}` plugin, which is not loaded.")]
    NotLoaded(String),
    #[error(transparent)]
    Denied(#[from] Denied),
    /// The interaction's data does not fit the contract.
    #[error("{0}")]
    Input(String),
    /// A command or option past its sunset (the text names its replacement).
    #[error("{0}")]
    Retired(String),
}

/// Where an interaction goes: the plugin, the call, and the deprecation notices to add.
struct Routed {
    plugin: Arc<LoadedPlugin>,
    call: Call,
    notices: Vec<String>,
}

/// The command a control belongs to: the first `:`-separated part of its id, if it names
/// one of the plugin's commands.
fn controlling_command<'p>(
    plugin: &'p LoadedPlugin,
    own_id: &str,
) -> Option<&'p crate::plugins::bindings::types::CommandDef> {
    let head = own_id.split(':').next()?;
    plugin.manifest.commands.iter().find(|c| c.name == head)
}

fn is_ephemeral(data: &Value) -> bool {
    data["flags"].as_u64().unwrap_or(0) & EPHEMERAL != 0
}

/// Sends an answer that missed the 3-second window, after a type 5 or 6 acknowledgement.
async fn deliver_late(
    rest: &DiscordRest,
    token: &str,
    answering: Answering,
    plugin: &str,
    answer: Callback,
) -> Result<(), super::rest::RestError> {
    match (answer, answering) {
        (Callback::Message(data), Answering::Command) if is_ephemeral(&data) => {
            // A public "thinking…" cannot turn ephemeral: replace it with an ephemeral follow-up.
            rest.delete_original(token).await?;
            rest.follow_up(token, &data).await?;
        }
        (Callback::Message(data), Answering::Command) => {
            rest.edit_original(token, &data).await?;
        }
        (Callback::Message(data), _) => {
            rest.follow_up(token, &data).await?;
        }
        (Callback::UpdateMessage(data), _) => {
            rest.edit_original(token, &data).await?;
        }
        (Callback::Files { data, files }, answering) => {
            // Files go as a follow-up (the deferral may have been public: it makes way).
            if answering == Answering::Command {
                rest.delete_original(token).await?;
            }
            rest.follow_up_with_files(token, &data, &files).await?;
        }
        // The plugin itself deferred; it follows up on its own.
        (Callback::DeferMessage { .. } | Callback::DeferUpdate, _) => {}
        (
            Callback::Pong | Callback::Choices(_) | Callback::Modal(_) | Callback::LaunchActivity,
            _,
        ) => {
            let text = format!(
                "The `{plugin}` plugin answered too late for that kind of response (modal, activity or choices must come within 3 seconds)."
            );
            if answering == Answering::Command {
                rest.delete_original(token).await?;
            }
            rest.follow_up(token, &response::ephemeral_message(&text))
                .await?;
        }
    }
    METRICS
        .interactions
        .with_label_values(&["late", "delivered"])
        .inc();
    Ok(())
}
