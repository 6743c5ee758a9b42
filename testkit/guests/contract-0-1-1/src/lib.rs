//! Test fixture: a plugin built against the frozen contract `kaltura-discord:plugin@0.1.1`
//! (`testkit/contract-history/0.1.1`), without the SDK, using that version's addition
//! (`kv.increment`). A host serving 0.1.2 (which added the kv user scope) must still load
//! and run it: additions within a major never break.

wit_bindgen::generate!({
    path: "../../contract-history/0.1.1",
    world: "plugin",
});

use kaltura_discord::plugin::kv;
use kaltura_discord::plugin::types::{Capability, CommandDef, CommandKind, Message};

struct Old;

fn say(text: String) -> Response {
    Response::Message(Message {
        content: Some(text),
        embeds: vec![],
        components: vec![],
        ephemeral: false,
    })
}

impl Guest for Old {
    fn manifest() -> Manifest {
        Manifest {
            name: "contract-011".into(),
            version: "1.0.0".into(),
            description: "Built against contract 0.1.1".into(),
            commands: vec![CommandDef {
                name: "old11".into(),
                description: "Counts its uses with kv.increment".into(),
                kind: CommandKind::ChatInput,
                options: vec![],
                subcommands: vec![],
                default_member_permissions: None,
                dm: false,
                nsfw: false,
            }],
            events: vec![],
            capabilities: vec![Capability::Kv],
        }
    }

    fn handle_command(_input: CommandInput) -> Result<Response, String> {
        let n = kv::increment("uses", 1).map_err(|e| format!("{e:?}"))?;
        Ok(say(format!("contract 0.1.1 plugin, use {n}")))
    }

    fn handle_component(_input: ComponentInput) -> Result<Response, String> {
        Err("no controls".into())
    }

    fn handle_autocomplete(_input: CommandInput) -> Result<Response, String> {
        Ok(Response::Choices(vec![]))
    }

    fn handle_modal(_input: ModalInput) -> Result<Response, String> {
        Err("no modals".into())
    }

    fn handle_event(_ev: Event) -> Result<(), String> {
        Ok(())
    }
}

export!(Old);
