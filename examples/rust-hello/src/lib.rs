//! The smallest useful plugin: `/hello [who]` answers with an embed and a button.

use kd_plugin::prelude::*;

struct Hello;

impl Plugin for Hello {
    fn manifest() -> Manifest {
        ManifestBuilder::new("hello", env!("CARGO_PKG_VERSION"), "Says hello")
            .command(
                CommandBuilder::new("hello", "Greet someone")
                    .option(OptionBuilder::user("who", "Who to greet")),
            )
            .build()
    }

    fn on_command(cmd: CommandInput) -> Result<Response, String> {
        let who = cmd.id("who").unwrap_or(&cmd.context.user.id).to_string();
        let embed = EmbedBuilder::new()
            .title("Hello!")
            .description(format!("Hi <@{who}>, welcome."))
            .color(0x57F287)
            .build();
        Ok(MessageBuilder::new()
            .embed(embed)
            .button(ButtonBuilder::primary("wave", "Wave back"))
            .into_response())
    }

    fn on_component(input: ComponentInput) -> Result<Response, String> {
        match input.custom_id.as_str() {
            "wave" => Ok(reply(format!("<@{}> waves back 👋", input.context.user.id))),
            other => Err(format!("unknown button {other}")),
        }
    }
}

export_plugin!(Hello);
