//! # kaltura-discord plugin SDK
//!
//! Write a [`Plugin`], export it with [`export_plugin!`], build with
//! `cargo build --target wasm32-wasip2 --release` (or `kdhost plugin build`), and drop the
//! `.wasm` into the host's plugins folder. The host hot-reloads it.
//!
//! ```no_run
//! use kd_plugin::prelude::*;
//!
//! struct Hello;
//!
//! impl Plugin for Hello {
//!     fn manifest() -> Manifest {
//!         ManifestBuilder::new("hello", "0.1.0", "Says hello")
//!             .command(CommandBuilder::new("hello", "Greet someone")
//!                 .option(OptionBuilder::user("who", "Who to greet").required()))
//!             .capability(Capability::Log)
//!             .build()
//!     }
//!
//!     fn on_command(cmd: CommandInput) -> Result<Response, String> {
//!         let who = cmd.id("who").unwrap_or(&cmd.context.user.id).to_string();
//!         log::info(&format!("greeting {who}"));
//!         let embed = EmbedBuilder::new().title("Hello!").description(format!("Hi <@{who}>")).build();
//!         Ok(MessageBuilder::new().embed(embed)
//!             .button(ButtonBuilder::primary("wave", "Wave back"))
//!             .into_response())
//!     }
//! }
//!
//! export_plugin!(Hello);
//! ```
//!
//! Capabilities: every interface you call (`discord`, `kaltura`, `http`, `kv`, `config`,
//! `log`, `host`) must be listed in the manifest with [`ManifestBuilder::capability`]; the
//! host refuses a component that imports more than it requests, and the operator decides
//! what is granted. A call outside the grant returns [`CapError::Denied`].

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "plugin",
        pub_export_macro: true,
        default_bindings_module: "kd_plugin::bindings",
        generate_all,
    });
}

mod builders;
mod input;

/// The plugin authoring guide (`docs/plugins.md`); its Rust examples are compiled as doctests.
#[doc = include_str!("../../docs/plugins.md")]
pub mod guide {}

pub use bindings::kaltura_discord::plugin::types::{
    ActionRow, ButtonStyle, CapError, Capability, Choice, ChoiceValue, CommandDef, CommandInput,
    CommandKind, CommandNote, Component, ComponentInput, Context, Embed, EmbedField, Event,
    Manifest, Message, Modal, ModalInput, OptionDef, OptionInput, OptionKind, OptionValue,
    Response, SelectMenu, SelectOption, SubcommandDef, TextInput, TextInputStyle, User,
};
pub use builders::*;

/// Host capabilities, one module per grant.
pub use bindings::kaltura_discord::plugin::{config, discord, host, http, kaltura, kv};

/// `log::info("...")` and friends; needs the `log` capability.
pub mod log {
    use crate::bindings::kaltura_discord::plugin::log::{Level, log};
    pub fn trace(msg: &str) {
        log(Level::Trace, msg)
    }
    pub fn debug(msg: &str) {
        log(Level::Debug, msg)
    }
    pub fn info(msg: &str) {
        log(Level::Info, msg)
    }
    pub fn warn(msg: &str) {
        log(Level::Warn, msg)
    }
    pub fn error(msg: &str) {
        log(Level::Error, msg)
    }
}

/// The contract version this SDK builds against.
pub const CONTRACT_VERSION: &str = "0.1.2";

/// Everything a plugin usually needs.
pub mod prelude {
    pub use crate::builders::*;
    pub use crate::{
        CapError, Capability, CommandInput, CommandNote, ComponentInput, Event, Manifest,
        ModalInput, Plugin, Response, config, discord, export_plugin, host, http, kaltura, kv, log,
    };
}

/// Implement this for your plugin. Only `manifest` is required; every handler you do not
/// override answers with a clear "not handled" error.
pub trait Plugin {
    /// Name, version, commands, event subscriptions and requested capabilities.
    fn manifest() -> Manifest;

    /// A command from the manifest was used.
    fn on_command(cmd: CommandInput) -> Result<Response, String> {
        Err(format!("command /{} is not handled", cmd.name))
    }

    /// A button or select menu on a message this plugin sent.
    fn on_component(input: ComponentInput) -> Result<Response, String> {
        Err(format!("component `{}` is not handled", input.custom_id))
    }

    /// Autocomplete for an option marked `autocomplete`; answer with [`Response::Choices`].
    fn on_autocomplete(_cmd: CommandInput) -> Result<Response, String> {
        Ok(Response::Choices(Vec::new()))
    }

    /// A modal this plugin opened was submitted.
    fn on_modal(input: ModalInput) -> Result<Response, String> {
        Err(format!("modal `{}` is not handled", input.custom_id))
    }

    /// An event listed in the manifest.
    fn on_event(_event: Event) -> Result<(), String> {
        Ok(())
    }

    /// Commands and options on their way out (contract 0.1.2), made with
    /// [`deprecated_command`] and [`deprecated_option`]: the host keeps registering each
    /// until its sunset, adds a one-line notice naming the replacement to every answer,
    /// lists them in `/help`, and drops them from Discord on the sunset day.
    fn command_notes() -> Vec<CommandNote> {
        Vec::new()
    }
}

/// Export a [`Plugin`] implementation as the component's entry points.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        #[doc(hidden)]
        pub struct __KdPluginExport;

        impl $crate::bindings::Guest for __KdPluginExport {
            fn manifest() -> $crate::Manifest {
                <$plugin as $crate::Plugin>::manifest()
            }
            fn handle_command(input: $crate::CommandInput) -> Result<$crate::Response, String> {
                <$plugin as $crate::Plugin>::on_command(input)
            }
            fn handle_component(
                input: $crate::ComponentInput,
            ) -> Result<$crate::Response, String> {
                <$plugin as $crate::Plugin>::on_component(input)
            }
            fn handle_autocomplete(
                input: $crate::CommandInput,
            ) -> Result<$crate::Response, String> {
                <$plugin as $crate::Plugin>::on_autocomplete(input)
            }
            fn handle_modal(input: $crate::ModalInput) -> Result<$crate::Response, String> {
                <$plugin as $crate::Plugin>::on_modal(input)
            }
            fn handle_event(ev: $crate::Event) -> Result<(), String> {
                <$plugin as $crate::Plugin>::on_event(ev)
            }
            fn command_notes() -> Vec<$crate::CommandNote> {
                <$plugin as $crate::Plugin>::command_notes()
            }
        }

        $crate::bindings::export!(__KdPluginExport with_types_in $crate::bindings);
    };
}
