//! Commands and options on their way out. A plugin says which in its `command-notes`
//! export (contract 0.1.2), a rule in its `command()` declaration; both become
//! [`Deprecation`]s. Until the sunset the host keeps registering them (their Discord
//! description says they are deprecated) and adds a one-line notice naming the
//! replacement to every answer; from the sunset day (UTC) they are left out of the sync,
//! and a stale client that still sends one is told what replaced it. The sunset is part of
//! what is synced, so the day it passes changes the command list once: no sync on every
//! start.

use chrono::{NaiveDate, Utc};
use serde_json::Value;

use super::response::Callback;
use crate::plugins::bindings::types::{CommandNote, Manifest};

/// Discord's limit on a message's text.
const CONTENT_MAX: usize = 2000;
/// Discord's limit on a command's or option's description.
const DESCRIPTION_MAX: usize = 100;
const EMBEDS_MAX: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deprecation {
    pub command: String,
    /// One of the command's top-level options; `None`: the whole command.
    pub option: Option<String>,
    /// What people use instead, as they read it (`/vote`).
    pub replacement: String,
    /// The first day (UTC) it is no longer offered.
    pub sunset: NaiveDate,
}

/// Today in UTC: what sunsets are compared with.
pub fn today() -> NaiveDate {
    Utc::now().date_naive()
}

impl Deprecation {
    /// Checks one note's fields; `at` says where it came from in errors.
    pub fn new(
        command: &str,
        option: Option<&str>,
        replacement: &str,
        sunset: &str,
        at: &str,
    ) -> Result<Self, String> {
        let replacement = replacement.trim();
        if replacement.is_empty() || replacement.chars().count() > 100 || replacement.contains('\n')
        {
            return Err(format!(
                "{at}: `replacement` needs 1 to 100 characters on one line (what people use instead, e.g. \"/vote\")"
            ));
        }
        let sunset = NaiveDate::parse_from_str(sunset.trim(), "%Y-%m-%d").map_err(|_| {
            format!("{at}: `sunset` is `{sunset}`, not a day written YYYY-MM-DD (UTC)")
        })?;
        Ok(Self {
            command: command.to_string(),
            option: option.map(String::from),
            replacement: replacement.to_string(),
            sunset,
        })
    }

    pub fn retired(&self, today: NaiveDate) -> bool {
        today >= self.sunset
    }

    /// "/poll" or "the `anonymous` option of /poll".
    fn what(&self) -> String {
        match &self.option {
            None => format!("/{}", self.command),
            Some(o) => format!("the `{o}` option of /{}", self.command),
        }
    }

    /// The line added to every answer until the sunset (Discord's small-text markdown).
    pub fn notice(&self) -> String {
        format!(
            "-# ⚠️ {} is deprecated and goes away on {}: use {} instead.",
            self.what(),
            self.sunset,
            self.replacement
        )
    }

    /// What a stale client that still sends it is told after the sunset.
    pub fn retired_message(&self) -> String {
        let what = self.what();
        let mut chars = what.chars();
        let what = match chars.next() {
            Some(first) => first.to_uppercase().chain(chars).collect::<String>(),
            None => what,
        };
        format!(
            "{what} was retired on {}: use {} instead.",
            self.sunset, self.replacement
        )
    }

    /// As the contract writes it (`host.command-notes`).
    pub fn to_note(&self) -> CommandNote {
        CommandNote {
            command: self.command.clone(),
            option_name: self.option.clone(),
            replacement: self.replacement.clone(),
            sunset: self.sunset.to_string(),
        }
    }

    /// `{command, option, replacement, sunset}` (`kdhost plugin check --json`).
    pub fn to_json(&self) -> Value {
        serde_json::json!({"command": self.command, "option": self.option,
            "replacement": self.replacement, "sunset": self.sunset.to_string()})
    }

    /// `Deprecated (use X): <description>`, cut to Discord's 100 characters.
    fn mark(&self, description: &str) -> String {
        let marked = format!("Deprecated (use {}): {description}", self.replacement);
        if marked.chars().count() <= DESCRIPTION_MAX {
            return marked;
        }
        let mut cut: String = marked.chars().take(DESCRIPTION_MAX - 1).collect();
        cut.push('…');
        cut
    }
}

/// "/poll → /vote, gone from 2027-06-30" (`kdhost plugin check`).
impl std::fmt::Display for Deprecation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} → {}, gone from {}",
            self.what(),
            self.replacement,
            self.sunset
        )
    }
}

/// A plugin's `command-notes`, checked against its manifest: each names one of its
/// commands (and one of that command's options), once.
pub fn from_notes(notes: &[CommandNote], manifest: &Manifest) -> Result<Vec<Deprecation>, String> {
    if notes.len() > 100 {
        return Err(format!(
            "command-notes: {} notes (at most 100)",
            notes.len()
        ));
    }
    let mut out: Vec<Deprecation> = Vec::new();
    for (i, n) in notes.iter().enumerate() {
        let at = format!("command-notes[{i}]");
        let Some(def) = manifest.commands.iter().find(|c| c.name == n.command) else {
            return Err(format!(
                "{at}: `{}` is not one of the manifest's commands",
                n.command
            ));
        };
        if let Some(o) = &n.option_name
            && !def.options.iter().any(|d| &d.name == o)
        {
            return Err(format!(
                "{at}: `{o}` is not an option of /{} (only top-level options can be deprecated)",
                n.command
            ));
        }
        let d = Deprecation::new(
            &n.command,
            n.option_name.as_deref(),
            &n.replacement,
            &n.sunset,
            &at,
        )?;
        if out
            .iter()
            .any(|o| o.command == d.command && o.option == d.option)
        {
            return Err(format!("{at}: {} is noted twice", d.what()));
        }
        out.push(d);
    }
    Ok(out)
}

/// Whether `command` (or its `option`) is still offered on `today`: no note retiring it
/// (a retired command takes its options with it).
pub fn offered(
    notes: &[Deprecation],
    command: &str,
    option: Option<&str>,
    today: NaiveDate,
) -> bool {
    !notes.iter().any(|n| {
        n.command == command
            && n.retired(today)
            && (n.option.is_none() || n.option.as_deref() == option)
    })
}

/// The command as registered on `today`: `None` once it is retired; otherwise retired
/// options are left out and deprecated ones (and the command) say so in their description.
pub fn registered(mut command: Value, notes: &[Deprecation], today: NaiveDate) -> Option<Value> {
    let name = command["name"].as_str().unwrap_or_default().to_string();
    if !offered(notes, &name, None, today) {
        return None;
    }
    // `get_mut`, not indexing: indexing would add an `options: null` a command without
    // options must not get.
    if let Some(options) = command.get_mut("options").and_then(Value::as_array_mut) {
        options.retain(|o| offered(notes, &name, o["name"].as_str(), today));
    }
    let mark = |item: &mut Value, n: &Deprecation| {
        // Only slash commands have a description (context menus send "").
        let field = item.get_mut("description");
        if let Some(field) = field.filter(|d| d.as_str().is_some_and(|d| !d.is_empty())) {
            *field = Value::String(n.mark(field.as_str().unwrap_or_default()));
        }
    };
    for n in notes
        .iter()
        .filter(|n| n.command == name && !n.retired(today))
    {
        match &n.option {
            None => mark(&mut command, n),
            Some(o) => {
                let options = command.get_mut("options").and_then(Value::as_array_mut);
                let mut options = options.into_iter().flatten();
                if let Some(opt) = options.find(|opt| opt["name"] == o.as_str()) {
                    mark(opt, n);
                }
            }
        }
    }
    Some(command)
}

/// The notes an invocation of `command` meets: the command's own and those of the
/// top-level options it was sent with (`data.options`).
pub fn met<'a>(notes: &'a [Deprecation], command: &str, data: &Value) -> Vec<&'a Deprecation> {
    let sent: Vec<&str> = data["options"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["name"].as_str())
        .collect();
    notes
        .iter()
        .filter(|n| n.command == command)
        .filter(|n| n.option.as_deref().is_none_or(|o| sent.contains(&o)))
        .collect()
}

/// What the host does with an invocation that meets `notes` on `today`: `Err` with the
/// answer when one is retired, else the notices to add.
pub fn verdict(notes: &[&Deprecation], today: NaiveDate) -> Result<Vec<String>, String> {
    if let Some(gone) = notes.iter().find(|n| n.retired(today)) {
        return Err(gone.retired_message());
    }
    Ok(notes.iter().map(|n| n.notice()).collect())
}

/// The answer with the notices added to its text (or, when the text has no room left, as
/// an embed of their own). Answers without a message (modals, deferrals, choices) are
/// unchanged: a deferred message gets them when it is delivered.
pub fn with_notices(answer: Callback, notices: &[String]) -> Callback {
    if notices.is_empty() {
        return answer;
    }
    let add = |mut data: Value| {
        let lines = notices.join("\n");
        let content = data["content"].as_str().unwrap_or_default();
        let joined = if content.is_empty() {
            lines.clone()
        } else {
            format!("{content}\n{lines}")
        };
        if joined.chars().count() <= CONTENT_MAX {
            data["content"] = Value::String(joined);
        } else if let Some(embeds) = data["embeds"].as_array_mut()
            && embeds.len() < EMBEDS_MAX
        {
            embeds.push(serde_json::json!({"description": lines}));
        } else if data["embeds"].is_null() {
            data["embeds"] = serde_json::json!([{"description": lines}]);
        }
        data
    };
    match answer {
        Callback::Message(data) => Callback::Message(add(data)),
        Callback::UpdateMessage(data) => Callback::UpdateMessage(add(data)),
        Callback::Files { data, files } => Callback::Files {
            data: add(data),
            files,
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn note(option: Option<&str>, sunset: &str) -> Deprecation {
        Deprecation::new("poll", option, "/vote", sunset, "t").unwrap()
    }

    #[test]
    fn bad_fields_are_named() {
        let e =
            Deprecation::new("poll", None, "/vote", "next week", "command-notes[2]").unwrap_err();
        assert!(
            e.contains("command-notes[2]") && e.contains("YYYY-MM-DD"),
            "{e}"
        );
        let e = Deprecation::new("poll", None, " ", "2027-01-01", "x").unwrap_err();
        assert!(e.contains("`replacement`"), "{e}");
    }

    #[test]
    fn a_command_is_registered_marked_until_its_sunset_and_not_from_that_day() {
        let cmd = json!({"type": 1, "name": "poll", "description": "Start a poll",
            "options": [{"name": "anonymous", "type": 5, "description": "Hide voters"},
                        {"name": "question", "type": 3, "description": "Ask"}]});
        let notes = [
            note(None, "2027-03-01"),
            note(Some("anonymous"), "2027-02-01"),
        ];
        let before = registered(cmd.clone(), &notes, day("2027-01-31")).unwrap();
        assert_eq!(
            before["description"],
            "Deprecated (use /vote): Start a poll"
        );
        assert_eq!(
            before["options"][0]["description"],
            "Deprecated (use /vote): Hide voters"
        );
        // The option goes on its own sunset, the command on its.
        let between = registered(cmd.clone(), &notes, day("2027-02-01")).unwrap();
        assert_eq!(between["options"].as_array().unwrap().len(), 1);
        assert_eq!(between["options"][0]["name"], "question");
        assert_eq!(registered(cmd.clone(), &notes, day("2027-03-01")), None);
        // Other commands are untouched; a long description is cut to 100 characters.
        let long = json!({"type": 1, "name": "poll", "description": "x".repeat(100)});
        let marked = registered(long, &notes[..1], day("2027-01-01")).unwrap();
        assert_eq!(marked["description"].as_str().unwrap().chars().count(), 100);
        let other = json!({"type": 1, "name": "vote", "description": "Vote"});
        assert_eq!(
            registered(other.clone(), &notes, day("2027-01-01")),
            Some(other)
        );
    }

    #[test]
    fn an_invocation_meets_its_commands_notes_and_its_sent_options_only() {
        let notes = [
            note(None, "2027-03-01"),
            note(Some("anonymous"), "2027-02-01"),
        ];
        let plain = json!({"name": "poll", "options": [{"name": "question", "value": "?"}]});
        assert_eq!(met(&notes, "poll", &plain).len(), 1);
        let with = json!({"name": "poll", "options": [{"name": "anonymous", "value": true}]});
        let m = met(&notes, "poll", &with);
        assert_eq!(m.len(), 2);
        assert_eq!(
            verdict(&m, day("2027-01-01")).unwrap()[0],
            "-# ⚠️ /poll is deprecated and goes away on 2027-03-01: use /vote instead."
        );
        assert_eq!(
            verdict(&m, day("2027-02-01")).unwrap_err(),
            "The `anonymous` option of /poll was retired on 2027-02-01: use /vote instead."
        );
        assert!(met(&notes, "vote", &with).is_empty());
    }

    #[test]
    fn notices_join_the_text_or_an_embed_when_the_text_is_full() {
        let n = vec!["-# ⚠️ x".to_string()];
        let Callback::Message(d) = with_notices(Callback::Message(json!({"content": "Hi"})), &n)
        else {
            panic!()
        };
        assert_eq!(d["content"], "Hi\n-# ⚠️ x");
        let full = json!({"content": "y".repeat(2000), "embeds": [{"title": "t"}]});
        let Callback::Message(d) = with_notices(Callback::Message(full), &n) else {
            panic!()
        };
        assert_eq!(d["content"].as_str().unwrap().len(), 2000);
        assert_eq!(d["embeds"][1]["description"], "-# ⚠️ x");
        assert!(matches!(
            with_notices(Callback::DeferUpdate, &n),
            Callback::DeferUpdate
        ));
    }
}
