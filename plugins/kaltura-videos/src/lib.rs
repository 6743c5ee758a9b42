//! First-party `kaltura-videos` plugin: search the Kaltura library and play, embed, share
//! or watch videos together; `/kaltura-get-ks` shows a guild admin their own USER session.

use kd_plugin::kaltura::{Entry, Role};
use kd_plugin::prelude::*;
use kd_plugin::{Choice, ChoiceValue, OptionValue};

struct Videos;

const KALTURA_BLUE: u32 = 0x006EFA;
/// Results with a row of buttons (Discord allows 5 rows; one is the picker).
const ROWS_OF_BUTTONS: usize = 4;
const MAX_LINK: usize = 512;
const SEARCH: &str = "kaltura-video-search";

impl Plugin for Videos {
    fn manifest() -> Manifest {
        ManifestBuilder::new(
            "kaltura-videos",
            env!("CARGO_PKG_VERSION"),
            "Search, play, share and watch Kaltura videos together",
        )
        .command(
            CommandBuilder::new(SEARCH, "Search the Kaltura video library")
                .option(
                    OptionBuilder::text("query", "Words in the title, description or tags")
                        .required()
                        .autocomplete()
                        .length(1, 200),
                )
                .option(
                    OptionBuilder::integer("limit", "How many results (1-10, default 5)")
                        .range(1.0, 10.0),
                ),
        )
        .command(
            CommandBuilder::new(
                "kaltura-get-ks",
                "Show your own Kaltura USER session (admins)",
            )
            .admin_only(),
        )
        .capability(Capability::Kaltura)
        .capability(Capability::Log)
        .build()
    }

    fn on_command(cmd: CommandInput) -> Result<Response, String> {
        Ok(match cmd.name.as_str() {
            SEARCH => {
                let query = cmd.text("query").unwrap_or_default();
                let limit = cmd.integer("limit").unwrap_or(5).clamp(1, 10) as u32;
                search(query, limit)
            }
            "kaltura-get-ks" => get_ks(),
            other => return Err(format!("unknown command /{other}")),
        })
    }

    fn on_component(input: ComponentInput) -> Result<Response, String> {
        let mut parts = input.custom_id.splitn(3, ':');
        let (cmd, action, id) = (parts.next(), parts.next(), parts.next());
        if cmd != Some(SEARCH) {
            return Err(format!("unknown control `{}`", input.custom_id));
        }
        Ok(match (action, id) {
            (Some("pick"), None) => match input.values.first() {
                Some(entry_id) => pick(entry_id),
                None => reply_ephemeral("Choose a video from the list."),
            },
            (Some("play"), Some(id)) => play(id),
            (Some("embed"), Some(id)) => embed_code(id),
            (Some("share"), Some(id)) => share(id),
            (Some("watch"), Some(id)) => watch(id),
            _ => return Err(format!("unknown control `{}`", input.custom_id)),
        })
    }

    fn on_autocomplete(cmd: CommandInput) -> Result<Response, String> {
        let typed = match cmd.focused() {
            Some((_, OptionValue::Text(t))) => t.trim().to_string(),
            _ => String::new(),
        };
        if typed.chars().count() < 2 {
            return Ok(Response::Choices(Vec::new()));
        }
        let found = kaltura::search_entries(&typed, 10)
            .map(|r| r.entries)
            .unwrap_or_default();
        let choices = found
            .into_iter()
            .map(|e| Choice {
                name: truncate(&e.name, 100),
                value: ChoiceValue::Text(truncate(&e.name, 100)),
            })
            .collect();
        Ok(Response::Choices(choices))
    }
}

fn duration(secs: u32) -> String {
    match secs {
        0 => "live".into(),
        s if s >= 3600 => format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60),
        s => format!("{}:{:02}", s / 60, s % 60),
    }
}

fn card(e: &Entry, long: bool) -> EmbedBuilder {
    let mut b = EmbedBuilder::new()
        .title(truncate(&e.name, 256))
        .color(KALTURA_BLUE)
        .field("Length", duration(e.duration), true)
        .field("Plays", e.plays.to_string(), true)
        .footer(format!("Kaltura · {}", e.id));
    let max = if long { 1000 } else { 200 };
    if !e.description.is_empty() {
        b = b.description(truncate(&e.description, max));
    }
    if long && !e.tags.is_empty() {
        b = b.field("Tags", truncate(&e.tags.join(", "), 1024), false);
    }
    if let Some(t) = &e.thumbnail_url {
        b = if long {
            b.image(t.clone())
        } else {
            b.thumbnail(t.clone())
        };
    }
    b
}

fn buttons(msg: MessageBuilder, e: &Entry, with_share: bool) -> MessageBuilder {
    let id = |action: &str| format!("{SEARCH}:{action}:{}", e.id);
    let mut m = msg
        .row()
        .button(ButtonBuilder::primary(&id("play"), "Play"))
        .button(ButtonBuilder::secondary(&id("embed"), "Embed code"));
    if with_share {
        m = m.button(ButtonBuilder::secondary(&id("share"), "Share"));
    }
    m.button(ButtonBuilder::success(&id("watch"), "Watch Together"))
}

fn search(query: &str, limit: u32) -> Response {
    let result = match kaltura::search_entries(query, limit) {
        Ok(r) => r,
        Err(e) => return reply_failed(&e),
    };
    if result.entries.is_empty() {
        return reply_ephemeral(format!(
            "No videos match “{}”. Try fewer or different words.",
            truncate(query, 100)
        ));
    }
    let mut msg = MessageBuilder::new()
        .content(format!(
            "{} of {} videos matching “{}”:",
            result.entries.len(),
            result.total,
            truncate(query, 100)
        ))
        .ephemeral();
    for e in &result.entries {
        msg = msg.embed(card(e, false).build());
    }
    if result.entries.len() > ROWS_OF_BUTTONS {
        let mut picker =
            SelectBuilder::new(&format!("{SEARCH}:pick")).placeholder("More actions for…");
        for e in &result.entries {
            picker = picker.option(&truncate(&e.name, 100), &e.id);
        }
        msg = msg.select(picker);
        return msg.into_response();
    }
    for e in &result.entries {
        msg = buttons(msg, e, true);
    }
    msg.into_response()
}

fn pick(entry_id: &str) -> Response {
    match kaltura::get_entry(entry_id) {
        Ok(e) => buttons(
            MessageBuilder::new().embed(card(&e, true).build()),
            &e,
            true,
        )
        .ephemeral()
        .into_response(),
        Err(e) => reply_failed(&e),
    }
}

/// A personal player link (its session is scoped to this video and to the caller).
fn play(entry_id: &str) -> Response {
    match kaltura::play(entry_id) {
        Ok(p) if p.iframe_url.len() <= MAX_LINK => MessageBuilder::new()
            .content("Your player link (personal: it carries your session for this video):")
            .button(ButtonBuilder::link(&p.iframe_url, "Open the player"))
            .ephemeral()
            .into_response(),
        Ok(p) => reply_ephemeral(format!(
            "Your player link (personal: it carries your session for this video):\n{}",
            p.iframe_url
        )),
        Err(e) => reply_failed(&e),
    }
}

fn embed_code(entry_id: &str) -> Response {
    match kaltura::play(entry_id) {
        Ok(p) => reply_ephemeral(format!(
            "Embed code (no session inside; viewers need access to the video):\n```html\n{}\n```",
            p.embed_code
        )),
        Err(e) => reply_failed(&e),
    }
}

/// Public: the video card with Play and Watch Together for everyone in the channel.
fn share(entry_id: &str) -> Response {
    match kaltura::get_entry(entry_id) {
        Ok(e) => buttons(
            MessageBuilder::new().embed(card(&e, true).build()),
            &e,
            false,
        )
        .into_response(),
        Err(e) => reply_failed(&e),
    }
}

/// Launches the Activity; the host hands this button's id (and so the entry) to it and
/// answers with a link when the app has no Activities.
fn watch(entry_id: &str) -> Response {
    match kaltura::get_entry(entry_id) {
        Ok(e) if e.status == 2 => Response::LaunchActivity,
        Ok(e) => reply_ephemeral(format!("“{}” is not ready to play yet.", e.name)),
        Err(e) => reply_failed(&e),
    }
}

fn get_ks() -> Response {
    match kaltura::whoami() {
        Ok(me) if me.guild_admin => {}
        Ok(me) => {
            let role = match me.role {
                Role::Viewer => "viewer",
                Role::Moderator => "moderator",
                Role::Admin => "admin",
            };
            return reply_ephemeral(format!(
                "Only server admins can use /kaltura-get-ks (your Kaltura role here: {role})."
            ));
        }
        Err(e) => return reply_failed(&e),
    }
    match kaltura::user_session(3600) {
        Ok(s) => {
            let privileges = if s.privileges.is_empty() {
                "none".to_string()
            } else {
                format!("`{}`", s.privileges)
            };
            let embed = EmbedBuilder::new()
                .title("Your Kaltura session")
                .color(KALTURA_BLUE)
                .field("Type", "USER (0)", true)
                .field("User", format!("`{}`", s.user_id), true)
                .field("Expires", format!("<t:{}:R>", s.expires_at), true)
                .field("Privileges", truncate(&privileges, 1024), false)
                .description(format!("Personal: do not share it.\n||`{}`||", s.ks))
                .build();
            MessageBuilder::new()
                .embed(embed)
                .ephemeral()
                .into_response()
        }
        Err(e) => reply_failed(&e),
    }
}

export_plugin!(Videos);
