//! First-party `kaltura-meetings` plugin: start, join, list and end Kaltura meetings.
//!
//! The host does the checking: the guild's command permissions apply to this plugin's
//! buttons too (a button id starts with the command it belongs to), only the owner or a
//! guild admin can end a meeting, and join links carry the role the guild maps the
//! member's Discord roles to.

use kd_plugin::kaltura::{Meeting, MeetingKind};
use kd_plugin::prelude::*;
use kd_plugin::{Choice, ChoiceValue, OptionValue};

struct Meetings;

const KALTURA_BLUE: u32 = 0x006EFA;
const ENDED_GREY: u32 = 0x99AAB5;
/// Discord's limit for a link button's URL.
const MAX_LINK: usize = 512;
const DEFAULT_SHARE: &str =
    "📅 **{{title}}** — a Kaltura {{kind}} started by {{owner}}. Press **Join** for your own link.";

impl Plugin for Meetings {
    fn manifest() -> Manifest {
        let meeting_id = |desc: &str| {
            OptionBuilder::text("meeting-id", desc)
                .required()
                .autocomplete()
                .length(1, 20)
        };
        ManifestBuilder::new(
            "kaltura-meetings",
            env!("CARGO_PKG_VERSION"),
            "Kaltura meetings, webinars and virtual classrooms",
        )
        .command(
            CommandBuilder::new(
                "kaltura-start",
                "Start a Kaltura meeting, webinar or classroom",
            )
            .option(
                OptionBuilder::text("type", "What to start")
                    .required()
                    .choice("Meeting", ChoiceValue::Text("meeting".into()))
                    .choice("Webinar", ChoiceValue::Text("webinar".into()))
                    .choice("Virtual classroom", ChoiceValue::Text("classroom".into())),
            )
            .option(
                OptionBuilder::text("title", "Title people will see")
                    .required()
                    .length(1, 200),
            )
            .option(OptionBuilder::text("description", "What it is about").length(1, 1000)),
        )
        .command(
            CommandBuilder::new("kaltura-join", "Get your personal link to a meeting")
                .option(meeting_id("The meeting (type to search active ones)")),
        )
        .command(CommandBuilder::new(
            "kaltura-list",
            "Active meetings on this server",
        ))
        .command(
            CommandBuilder::new("kaltura-end", "End a meeting you started (admins: any)")
                .option(meeting_id("The meeting to end")),
        )
        .capability(Capability::Kaltura)
        .capability(Capability::Config)
        .capability(Capability::Log)
        .build()
    }

    fn on_command(cmd: CommandInput) -> Result<Response, String> {
        let id = || {
            cmd.text("meeting-id")
                .unwrap_or_default()
                .trim()
                .to_string()
        };
        Ok(match cmd.name.as_str() {
            "kaltura-start" => start(&cmd),
            "kaltura-join" => join(&id()),
            "kaltura-list" => list(),
            "kaltura-end" => end(&id()),
            other => return Err(format!("unknown command /{other}")),
        })
    }

    fn on_component(input: ComponentInput) -> Result<Response, String> {
        let mut parts = input.custom_id.splitn(3, ':');
        Ok(match (parts.next(), parts.next(), parts.next()) {
            (Some("kaltura-join"), Some(id), None) => join(id),
            (Some("kaltura-end"), Some(id), None) => end(id),
            (Some("kaltura-start"), Some("share"), Some(id)) => share(id),
            _ => return Err(format!("unknown control `{}`", input.custom_id)),
        })
    }

    fn on_autocomplete(cmd: CommandInput) -> Result<Response, String> {
        let typed = match cmd.focused() {
            Some((_, OptionValue::Text(t))) => t.to_lowercase(),
            _ => String::new(),
        };
        // Suggestions are best effort: no Kaltura, no suggestions.
        let meetings = kaltura::list_meetings().unwrap_or_default();
        let choices = meetings
            .into_iter()
            .filter(|m| m.title.to_lowercase().contains(&typed) || m.id.starts_with(&typed))
            .take(25)
            .map(|m| Choice {
                name: truncate(
                    &format!("{} ({}, #{})", m.title, kind_name(m.kind), m.id),
                    100,
                ),
                value: ChoiceValue::Text(m.id),
            })
            .collect();
        Ok(Response::Choices(choices))
    }
}

fn kind_name(k: MeetingKind) -> &'static str {
    match k {
        MeetingKind::Meeting => "meeting",
        MeetingKind::Webinar => "webinar",
        MeetingKind::Classroom => "classroom",
    }
}

/// A meeting as an embed: title, type, owner, id, and when it ends (or that it ended).
fn card(m: &Meeting) -> EmbedBuilder {
    let mut e = EmbedBuilder::new()
        .title(truncate(&m.title, 256))
        .color(if m.active { KALTURA_BLUE } else { ENDED_GREY })
        .field("Type", kind_name(m.kind), true)
        .field("Started by", format!("<@{}>", m.owner_id), true)
        .field("Meeting id", format!("`{}`", m.id), true)
        .footer("Kaltura");
    if m.active {
        e = e.field("Ends", format!("<t:{}:R>", m.ends_at), true);
    } else {
        e = e.field("Status", "ended", true);
    }
    if !m.description.is_empty() {
        e = e.description(truncate(&m.description, 1000));
    }
    e
}

fn start(cmd: &CommandInput) -> Response {
    let kind = match cmd.text("type") {
        Some("webinar") => MeetingKind::Webinar,
        Some("classroom") => MeetingKind::Classroom,
        _ => MeetingKind::Meeting,
    };
    let title = cmd.text("title").unwrap_or_default();
    let description = cmd.text("description").unwrap_or_default();
    match kaltura::create_meeting(kind, title, description) {
        Ok(m) => {
            log::info(&format!("meeting {} started", m.id));
            MessageBuilder::new()
                .content("Your meeting is ready. Share it, or join it yourself:")
                .embed(card(&m).build())
                .button(ButtonBuilder::primary(
                    &format!("kaltura-join:{}", m.id),
                    "Join",
                ))
                .button(ButtonBuilder::secondary(
                    &format!("kaltura-start:share:{}", m.id),
                    "Share to channel",
                ))
                .button(ButtonBuilder::danger(
                    &format!("kaltura-end:{}", m.id),
                    "End",
                ))
                .ephemeral()
                .into_response()
        }
        Err(e) => reply_failed(&e),
    }
}

fn join(id: &str) -> Response {
    match kaltura::join_meeting(id) {
        Ok(url) if url.len() <= MAX_LINK => MessageBuilder::new()
            .content("Your personal link (do not share it: it signs you in):")
            .button(ButtonBuilder::link(&url, "Open the meeting"))
            .ephemeral()
            .into_response(),
        Ok(url) => MessageBuilder::new()
            .content(format!(
                "Your personal link (do not share it: it signs you in):\n{url}"
            ))
            .ephemeral()
            .into_response(),
        Err(e) => reply_failed(&e),
    }
}

fn list() -> Response {
    let meetings = match kaltura::list_meetings() {
        Ok(m) => m,
        Err(e) => return reply_failed(&e),
    };
    if meetings.is_empty() {
        return reply("No active meetings on this server. Start one with `/kaltura-start`.");
    }
    let mut embed = EmbedBuilder::new()
        .title("Active meetings")
        .color(KALTURA_BLUE);
    for m in meetings.iter().take(25) {
        embed = embed.field(
            truncate(&format!("{} · {}", m.title, kind_name(m.kind)), 256),
            format!(
                "`{}` · by <@{}> · ends <t:{}:R>",
                m.id, m.owner_id, m.ends_at
            ),
            false,
        );
    }
    let mut msg = MessageBuilder::new().embed(embed.build());
    // One Join button per meeting, up to Discord's 25 buttons.
    for m in meetings.iter().take(25) {
        msg = msg.button(ButtonBuilder::primary(
            &format!("kaltura-join:{}", m.id),
            &truncate(&format!("Join {}", m.title), 80),
        ));
    }
    msg.into_response()
}

fn end(id: &str) -> Response {
    let m = match kaltura::get_meeting(id) {
        Ok(m) => m,
        Err(e) => return reply_failed(&e),
    };
    if !m.active {
        return reply_ephemeral(format!("“{}” has already ended.", m.title));
    }
    match kaltura::end_meeting(id) {
        Ok(()) => {
            log::info(&format!("meeting {id} ended"));
            reply_ephemeral(format!("“{}” has ended.", m.title))
        }
        Err(e) => reply_failed(&e),
    }
}

/// Fills `{{name}}` placeholders; unknown ones stay as written.
fn template(t: &str, m: &Meeting) -> String {
    t.replace("{{title}}", &m.title)
        .replace("{{kind}}", kind_name(m.kind))
        .replace("{{owner}}", &format!("<@{}>", m.owner_id))
        .replace("{{description}}", &m.description)
        .replace("{{id}}", &m.id)
        .replace("{{ends}}", &format!("<t:{}:R>", m.ends_at))
}

/// A public post with the guild's `meeting_share` template and a Join button (everyone
/// who presses it gets their own link).
fn share(id: &str) -> Response {
    let m = match kaltura::get_meeting(id) {
        Ok(m) if m.active => m,
        Ok(m) => return reply_ephemeral(format!("“{}” has ended.", m.title)),
        Err(e) => return reply_failed(&e),
    };
    let text = config::get("templates.meeting_share")
        .ok()
        .flatten()
        .and_then(|json| serde_json::from_str::<String>(&json).ok())
        .unwrap_or_else(|| DEFAULT_SHARE.to_string());
    MessageBuilder::new()
        .content(truncate(&template(&text, &m), 2000))
        .embed(card(&m).build())
        .button(ButtonBuilder::primary(
            &format!("kaltura-join:{}", m.id),
            "Join",
        ))
        .into_response()
}

export_plugin!(Meetings);
