//! First-party `core` plugin: `/help` and `/about`.

use kd_plugin::host::PluginInfo;
use kd_plugin::prelude::*;

struct Core;

const BLURPLE: u32 = 0x5865F2;

impl Plugin for Core {
    fn manifest() -> Manifest {
        ManifestBuilder::new("core", env!("CARGO_PKG_VERSION"), "Help and host status")
            .command(
                CommandBuilder::new("help", "List every command with its plugin and version")
                    .option(
                        OptionBuilder::text("plugin", "Only this plugin's commands").autocomplete(),
                    )
                    .dm(true),
            )
            .command(CommandBuilder::new("about", "Host version and plugin status").dm(true))
            .capability(Capability::Host)
            .build()
    }

    fn on_command(cmd: CommandInput) -> Result<Response, String> {
        let info = host::info();
        match cmd.name.as_str() {
            "help" => {
                let notes = Notes(host::command_notes());
                Ok(help(&info.plugins, &notes, cmd.text("plugin")))
            }
            "about" => Ok(about(&info)),
            other => Err(format!("unknown command /{other}")),
        }
    }

    fn on_autocomplete(cmd: CommandInput) -> Result<Response, String> {
        let typed = match cmd.focused() {
            Some((_, OptionValue::Text(t))) => t.to_lowercase(),
            _ => String::new(),
        };
        let choices = host::info()
            .plugins
            .into_iter()
            .filter(|p| p.name.contains(&typed))
            .take(25)
            .map(|p| Choice {
                name: p.name.clone(),
                value: ChoiceValue::Text(p.name),
            })
            .collect();
        Ok(Response::Choices(choices))
    }
}

use kd_plugin::{Choice, ChoiceValue, CommandNote, OptionValue};

/// The loaded plugins' commands and options on their way out (the host leaves retired
/// ones out of both `info` and `command-notes`).
struct Notes(Vec<(String, CommandNote)>);

impl Notes {
    /// The `/help` line of a command, with what of it is on its way out.
    fn line(&self, plugin: &str, name: &str, description: &str) -> String {
        let mut line = format!("`/{name}` — {description}");
        let mine = self
            .0
            .iter()
            .filter(|(p, n)| p == plugin && n.command == name);
        for (_, n) in mine {
            let what = match &n.option_name {
                None => "deprecated".to_string(),
                Some(o) => format!("option `{o}` deprecated"),
            };
            line.push_str(&format!(
                "\n  ⚠️ {what}: use {} (goes away {})",
                n.replacement, n.sunset
            ));
        }
        line
    }
}

fn help(plugins: &[PluginInfo], notes: &Notes, only: Option<&str>) -> Response {
    let mut embed = EmbedBuilder::new().title("Commands").color(BLURPLE);
    let mut shown = 0;
    for p in plugins.iter().filter(|p| only.is_none_or(|o| o == p.name)) {
        if p.commands.is_empty() {
            continue;
        }
        let lines: Vec<String> = p
            .commands
            .iter()
            .map(|c| notes.line(&p.name, &c.name, &c.description))
            .collect();
        let mut value = lines.join("\n");
        if value.chars().count() > 1024 {
            // Discord counts characters; cut on one (a byte cut could split a ⚠️).
            value = value.chars().take(1022).collect();
            value.push_str(" …");
        }
        if shown < 25 {
            embed = embed.field(format!("{} v{}", p.name, p.version), value, false);
        }
        shown += 1;
    }
    if shown == 0 {
        let text = match only {
            Some(name) => format!("No plugin named `{name}` has commands."),
            None => "No commands are loaded.".to_string(),
        };
        return reply_ephemeral(text);
    }
    if shown > 25 {
        embed = embed.footer(format!(
            "{} more plugins: use /help plugin:<name>",
            shown - 25
        ));
    }
    MessageBuilder::new()
        .embed(embed.build())
        .ephemeral()
        .into_response()
}

fn about(info: &kd_plugin::host::HostInfo) -> Response {
    let plugins: Vec<String> = info
        .plugins
        .iter()
        .map(|p| {
            format!(
                "**{}** v{} ({}, contract {})",
                p.name, p.version, p.source, p.contract
            )
        })
        .collect();
    let services: Vec<String> = info
        .services
        .iter()
        .map(|(s, state)| format!("{s}: {state}"))
        .collect();
    let embed = EmbedBuilder::new()
        .title("kaltura-discord host")
        .color(BLURPLE)
        .field("Version", info.version.clone(), true)
        .field("Uptime", uptime(info.uptime), true)
        .field("Plugins", non_empty(plugins.join("\n")), false)
        .field("Services", non_empty(services.join("\n")), false)
        .build();
    MessageBuilder::new()
        .embed(embed)
        .ephemeral()
        .into_response()
}

fn non_empty(s: String) -> String {
    if s.is_empty() {
        "none".into()
    } else {
        s.chars().take(1024).collect()
    }
}

fn uptime(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h) {
        (0, 0) => format!("{m}m {s}s"),
        (0, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

export_plugin!(Core);
