//! Test fixture: exercises every capability through the real host.

use kd_plugin::prelude::*;

struct Caps;

fn text_opt(cmd: &CommandInput, name: &str) -> String {
    cmd.text(name).unwrap_or_default().to_string()
}

impl Plugin for Caps {
    fn manifest() -> Manifest {
        let url = || OptionBuilder::text("url", "URL").required();
        ManifestBuilder::new("caps", "0.1.0", "Capability fixture")
            .command(CommandBuilder::new(
                "count",
                "Increments a per-guild counter in kv",
            ))
            .command(CommandBuilder::new("fetch", "Fetches a URL").option(url()))
            .command(
                CommandBuilder::new("announce", "Posts in a channel")
                    .option(OptionBuilder::text("channel", "Channel id").required()),
            )
            .command(
                CommandBuilder::new("setting", "Reads a guild setting")
                    .option(OptionBuilder::text("path", "Dotted path").required()),
            )
            .command(CommandBuilder::new(
                "later",
                "Defers, then follows up from a button",
            ))
            .command(CommandBuilder::new("video", "Searches Kaltura"))
            .command(CommandBuilder::new(
                "categories",
                "Lists Kaltura categories",
            ))
            .command(CommandBuilder::new("early", "Follows up before answering"))
            .command(CommandBuilder::new(
                "last-event",
                "The last Kaltura event this plugin received",
            ))
            .event("kaltura.entry_ready")
            .capability(Capability::Kv)
            .capability(Capability::Http)
            .capability(Capability::Discord)
            .capability(Capability::Config)
            .capability(Capability::Kaltura)
            .build()
    }

    fn on_command(cmd: CommandInput) -> Result<Response, String> {
        let show = |r: Result<String, CapError>| match r {
            Ok(s) => reply(s),
            Err(e) => reply_ephemeral(format!("{e:?}")),
        };
        Ok(match cmd.name.as_str() {
            "count" => show((|| {
                let n = kv::get("count")?
                    .map(|v| u64::from_le_bytes(v.try_into().unwrap_or([0; 8])))
                    .unwrap_or(0)
                    + 1;
                kv::set("count", &n.to_le_bytes())?;
                Ok(format!("count={n}"))
            })()),
            "fetch" => show(
                http::fetch(&http::Request {
                    method: "GET".into(),
                    url: text_opt(&cmd, "url"),
                    headers: vec![],
                    body: None,
                })
                .map(|r| format!("status={} bytes={}", r.status, r.body.len())),
            ),
            "announce" => show(
                discord::send_message(
                    &text_opt(&cmd, "channel"),
                    &MessageBuilder::new().content("announcement").build(),
                )
                .map(|id| format!("sent {id}")),
            ),
            "last-event" => show(kv::get("last_event").map(|v| match v {
                Some(v) => String::from_utf8_lossy(&v).into_owned(),
                None => "none".into(),
            })),
            "setting" => show(
                config::get(&text_opt(&cmd, "path"))
                    .map(|v| format!("setting={}", v.unwrap_or("none".into()))),
            ),
            "video" => show(
                kaltura::search_entries("cats", 5).map(|v| format!("{} entries", v.entries.len())),
            ),
            "categories" => show(kaltura::list_categories().map(|list| {
                list.iter()
                    .map(|c| format!("{}={}", c.full_name, c.entries_count))
                    .collect::<Vec<_>>()
                    .join("; ")
            })),
            "early" => show(
                discord::follow_up(
                    &cmd.context.interaction_id,
                    &MessageBuilder::new().content("too early").build(),
                )
                .map(|id| format!("followed up {id}")),
            ),
            // Acknowledge now; a later button press finishes it with a follow-up.
            "later" => return Ok(Response::Defer(false)),
            other => return Err(format!("unknown command {other}")),
        })
    }

    /// Remembers the entry of the last `kaltura.entry_ready` (per guild, in kv).
    fn on_event(ev: Event) -> Result<(), String> {
        let name = ev
            .payload
            .split("\"entry_name\":\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_default()
            .to_string();
        kv::set("last_event", format!("{} {name}", ev.kind).as_bytes())
            .map_err(|e| format!("{e:?}"))
    }

    /// `finish:<interaction id>` follows up on an interaction this plugin deferred.
    fn on_component(input: ComponentInput) -> Result<Response, String> {
        let id = input
            .custom_id
            .strip_prefix("finish:")
            .ok_or("unknown button")?;
        match discord::follow_up(id, &MessageBuilder::new().content("finished later").build()) {
            Ok(_) => Ok(reply_ephemeral("followed up")),
            Err(e) => Ok(reply_ephemeral(format!("{e:?}"))),
        }
    }
}

export_plugin!(Caps);
