//! Test fixture: commands and options on their way out (contract 0.1.2 `command-notes`).
//! `/poll` and `/vote`'s `anonymous` option are deprecated (sunset far ahead); `/ballot`
//! and `/vote`'s `legacy` option are past their sunset.

use kd_plugin::prelude::*;

struct Versions;

const LATER: &str = "2099-01-01";
const PAST: &str = "2020-01-01";

impl Plugin for Versions {
    fn manifest() -> Manifest {
        ManifestBuilder::new("versions", "2.1.0", "Commands on their way out")
            .command(
                CommandBuilder::new("vote", "Vote on a question")
                    .option(OptionBuilder::text("question", "What to ask").required())
                    .option(OptionBuilder::boolean("anonymous", "Hide who voted"))
                    .option(OptionBuilder::boolean("secret", "Hide who voted"))
                    .option(OptionBuilder::text("legacy", "An old setting")),
            )
            .command(
                CommandBuilder::new("poll", "Start a poll")
                    .option(OptionBuilder::text("question", "What to ask").required()),
            )
            .command(CommandBuilder::new("ballot", "The oldest way to vote"))
            .build()
    }

    fn command_notes() -> Vec<CommandNote> {
        vec![
            deprecated_command("poll", "/vote", LATER),
            deprecated_option("vote", "anonymous", "the `secret` option", LATER),
            deprecated_command("ballot", "/vote", PAST),
            deprecated_option("vote", "legacy", "nothing", PAST),
        ]
    }

    fn on_command(cmd: CommandInput) -> Result<Response, String> {
        let question = cmd.text("question").unwrap_or("?");
        Ok(reply(format!("/{} asked: {question}", cmd.name)))
    }
}

export_plugin!(Versions);
