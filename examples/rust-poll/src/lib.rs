//! Example plugin `poll` (Rust): `/poll question options` posts a poll with one button per
//! option; votes are counted in `kv` with the atomic `kv.increment` (contract 0.1.1), and
//! each person's own vote is kept in their own scope (`kv.user-*`, contract 0.1.2: it is in
//! their export and goes when they delete their data). The results embed updates on every
//! vote, and the poll's author can close it. On `privacy.erase` the plugin forgets the
//! erased person as the author of its polls in that server. The same plugin exists in
//! JavaScript and Python.

use kd_plugin::prelude::*;
use serde_json::{Value, json};

struct Poll;

const MAX_OPTIONS: usize = 10;
const BAR: usize = 12;

impl Plugin for Poll {
    fn manifest() -> Manifest {
        ManifestBuilder::new(
            "poll",
            env!("CARGO_PKG_VERSION"),
            "Quick polls with buttons",
        )
        .command(
            CommandBuilder::new("poll", "Start a poll")
                .option(
                    OptionBuilder::text("question", "What to ask")
                        .required()
                        .length(1, 200),
                )
                .option(
                    OptionBuilder::text("options", "Choices, separated by commas (2-10)")
                        .required()
                        .length(3, 500),
                ),
        )
        .event("privacy.erase")
        .capability(Capability::Kv)
        .build()
    }

    /// `privacy.erase`: the host already deleted the person's own scope; what this plugin
    /// keeps elsewhere about them is the author of each poll in the server's scope.
    fn on_event(event: Event) -> Result<(), String> {
        if event.kind != "privacy.erase" || event.guild_id.is_none() {
            return Ok(());
        }
        let who: Value = serde_json::from_str(&event.payload).map_err(|e| e.to_string())?;
        let err = |e: CapError| e.message().to_string();
        for key in kv::list_keys("poll:").map_err(err)? {
            if key.matches(':').count() != 1 {
                continue; // counters, not polls
            }
            let Some(raw) = kv::get(&key).map_err(err)? else {
                continue;
            };
            let mut poll: Value = serde_json::from_slice(&raw).map_err(|e| e.to_string())?;
            if poll["owner"] == who["user"] {
                poll["owner"] = Value::Null;
                kv::set(&key, poll.to_string().as_bytes()).map_err(err)?;
            }
        }
        Ok(())
    }

    fn on_command(cmd: CommandInput) -> Result<Response, String> {
        let question = cmd.text("question").unwrap_or_default().trim().to_string();
        let options: Vec<String> = cmd
            .text("options")
            .unwrap_or_default()
            .split(',')
            .map(|o| o.trim().to_string())
            .filter(|o| !o.is_empty())
            .collect();
        if !(2..=MAX_OPTIONS).contains(&options.len()) {
            return Ok(reply_ephemeral(format!(
                "A poll needs 2 to {MAX_OPTIONS} options separated by commas (got {}).",
                options.len()
            )));
        }
        // The interaction id is unique: it names the poll.
        let id = cmd.context.interaction_id.clone();
        let poll = json!({"question": question, "options": options, "owner": cmd.context.user.id, "closed": false});
        kv::set(&format!("poll:{id}"), poll.to_string().as_bytes())
            .map_err(|e| e.message().to_string())?;
        Ok(render(&id, &poll, &vec![0; options.len()]).into_response())
    }

    fn on_component(input: ComponentInput) -> Result<Response, String> {
        let parts: Vec<&str> = input.custom_id.split(':').collect();
        let (action, id) = match parts.as_slice() {
            ["vote", id, _] | ["close", id] => (parts[0], *id),
            _ => return Err(format!("unknown control `{}`", input.custom_id)),
        };
        let key = format!("poll:{id}");
        let Some(raw) = kv::get(&key).map_err(|e| e.message().to_string())? else {
            return Ok(reply_ephemeral("This poll is gone."));
        };
        let mut poll: Value = serde_json::from_slice(&raw).map_err(|e| e.to_string())?;
        let n = poll["options"].as_array().map(|o| o.len()).unwrap_or(0);
        let user = &input.context.user.id;
        if poll["closed"] == true {
            return Ok(reply_ephemeral("This poll is closed."));
        }
        if action == "close" {
            if poll["owner"] != user.as_str() {
                return Ok(reply_ephemeral("Only the poll's author can close it."));
            }
            poll["closed"] = json!(true);
            kv::set(&key, poll.to_string().as_bytes()).map_err(|e| e.message().to_string())?;
        } else {
            let choice: usize = parts[2].parse().map_err(|_| "bad option".to_string())?;
            if choice >= n {
                return Err("bad option".into());
            }
            vote(id, choice).map_err(|e| e.message().to_string())?;
        }
        Ok(render(id, &poll, &counts(id, n)?).into_update())
    }
}

/// One vote per person (kept in their own scope): moving a vote decrements the old
/// option's counter.
fn vote(id: &str, choice: usize) -> Result<(), CapError> {
    let mine = format!("poll:{id}:vote");
    let previous =
        kv::user_get(&mine)?.and_then(|v| String::from_utf8(v).ok()?.parse::<usize>().ok());
    if previous == Some(choice) {
        return Ok(());
    }
    if let Some(p) = previous {
        kv::increment(&format!("poll:{id}:count:{p}"), -1)?;
    }
    kv::increment(&format!("poll:{id}:count:{choice}"), 1)?;
    kv::user_set(&mine, choice.to_string().as_bytes())
}

fn counts(id: &str, n: usize) -> Result<Vec<i64>, String> {
    (0..n)
        .map(|i| {
            let v =
                kv::get(&format!("poll:{id}:count:{i}")).map_err(|e| e.message().to_string())?;
            Ok(v.and_then(|v| String::from_utf8(v).ok()?.parse().ok())
                .unwrap_or(0))
        })
        .collect()
}

fn render(id: &str, poll: &Value, counts: &[i64]) -> MessageBuilder {
    let total: i64 = counts.iter().sum();
    let closed = poll["closed"] == true;
    let options: Vec<&str> = poll["options"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let mut embed = EmbedBuilder::new()
        .title(truncate(poll["question"].as_str().unwrap_or("Poll"), 256))
        .color(if closed { 0x99AAB5 } else { 0x5865F2 })
        .footer(format!(
            "{total} vote{}{}",
            if total == 1 { "" } else { "s" },
            if closed { " · closed" } else { "" }
        ));
    for (i, (option, count)) in options.iter().zip(counts).enumerate() {
        let filled = if total > 0 {
            (*count as usize * BAR) / total as usize
        } else {
            0
        };
        embed = embed.field(
            format!("{}. {}", i + 1, truncate(option, 200)),
            format!("{}{} {count}", "█".repeat(filled), "░".repeat(BAR - filled)),
            false,
        );
    }
    let mut msg = MessageBuilder::new().embed(embed.build());
    if !closed {
        for (i, option) in options.iter().enumerate() {
            msg = msg.button(ButtonBuilder::secondary(
                &format!("vote:{id}:{i}"),
                &truncate(option, 80),
            ));
        }
        msg = msg
            .row()
            .button(ButtonBuilder::danger(&format!("close:{id}"), "Close poll"));
    }
    msg
}

export_plugin!(Poll);
