//! Validation of a plugin's manifest against the host's and Discord's rules.

use std::collections::HashSet;
use std::sync::LazyLock;

use regex::Regex;

use super::bindings::types::{CommandDef, CommandKind, Manifest, OptionDef, OptionKind};

/// Discord's rule for slash command and option names.
static CHAT_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[-_'\p{L}\p{N}\p{sc=Deva}\p{sc=Thai}]{1,32}$").unwrap());
static PLUGIN_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9][a-z0-9_-]{0,31}$").unwrap());
static EVENT_KIND: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9][a-z0-9._-]{0,63}$").unwrap());

/// Whether `name` may name a plugin (it also names its file when published).
pub fn valid_plugin_name(name: &str) -> bool {
    PLUGIN_NAME.is_match(name)
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

fn check_name(at: &str, name: &str) -> Result<(), String> {
    if !CHAT_NAME.is_match(name) || name.to_lowercase() != name {
        return Err(format!(
            "{at}: name `{name}` must be 1-32 lowercase letters, digits, `-`, `_` or `'`"
        ));
    }
    Ok(())
}

fn check_description(at: &str, d: &str) -> Result<(), String> {
    let n = chars(d);
    if !(1..=100).contains(&n) {
        return Err(format!(
            "{at}: description must be 1-100 characters (it is {n})"
        ));
    }
    Ok(())
}

fn check_options(at: &str, options: &[OptionDef]) -> Result<(), String> {
    if options.len() > 25 {
        return Err(format!(
            "{at}: {} options (Discord allows 25)",
            options.len()
        ));
    }
    let mut names = HashSet::new();
    let mut optional_seen = false;
    for o in options {
        let here = format!("{at}, option `{}`", o.name);
        check_name(&here, &o.name)?;
        check_description(&here, &o.description)?;
        if !names.insert(o.name.as_str()) {
            return Err(format!("{at}: option name `{}` is used twice", o.name));
        }
        if o.required && optional_seen {
            return Err(format!(
                "{here}: required options must come before optional ones"
            ));
        }
        optional_seen |= !o.required;
        let typed = matches!(
            o.kind,
            OptionKind::Text | OptionKind::Integer | OptionKind::Number
        );
        if o.choices.len() > 25 {
            return Err(format!(
                "{here}: {} choices (Discord allows 25)",
                o.choices.len()
            ));
        }
        if (!o.choices.is_empty() || o.autocomplete) && !typed {
            return Err(format!(
                "{here}: choices and autocomplete need a text, integer or number option"
            ));
        }
        if !o.choices.is_empty() && o.autocomplete {
            return Err(format!(
                "{here}: choices and autocomplete cannot be combined"
            ));
        }
        for c in &o.choices {
            if !(1..=100).contains(&chars(&c.name)) {
                return Err(format!("{here}: choice names are 1-100 characters"));
            }
        }
        if let (Some(min), Some(max)) = (o.min_value, o.max_value)
            && min > max
        {
            return Err(format!("{here}: min-value {min} is above max-value {max}"));
        }
        if let (Some(min), Some(max)) = (o.min_length, o.max_length)
            && (min > max || max == 0 || max > 6000)
        {
            return Err(format!(
                "{here}: lengths must satisfy min <= max, 1 <= max <= 6000"
            ));
        }
    }
    Ok(())
}

fn check_command(c: &CommandDef) -> Result<(), String> {
    let at = format!("command `{}`", c.name);
    match c.kind {
        CommandKind::ChatInput => {
            check_name("command", &c.name)?;
            check_description(&at, &c.description)?;
        }
        CommandKind::User | CommandKind::Message => {
            if !(1..=32).contains(&chars(&c.name)) {
                return Err(format!(
                    "{at}: user and message command names are 1-32 characters"
                ));
            }
            if !c.options.is_empty() || !c.subcommands.is_empty() {
                return Err(format!("{at}: user and message commands take no options"));
            }
        }
    }
    if !c.subcommands.is_empty() && !c.options.is_empty() {
        return Err(format!(
            "{at}: a command with sub-commands cannot have options of its own"
        ));
    }
    check_options(&at, &c.options)?;
    let mut top = HashSet::new();
    let mut groups: std::collections::HashMap<&str, usize> = Default::default();
    let mut seen = HashSet::new();
    for s in &c.subcommands {
        let here = format!("{at}, sub-command `{}`", s.name);
        check_name(&here, &s.name)?;
        check_description(&here, &s.description)?;
        match &s.group {
            Some(g) => {
                check_name(&format!("{at}, group `{g}`"), g)?;
                *groups.entry(g.as_str()).or_default() += 1;
                top.insert(g.as_str());
            }
            None => {
                top.insert(s.name.as_str());
            }
        }
        if !seen.insert((s.group.as_deref(), s.name.as_str())) {
            return Err(format!("{here}: defined twice"));
        }
        check_options(&here, &s.options)?;
    }
    if top.len() > 25 || groups.values().any(|n| *n > 25) {
        return Err(format!("{at}: at most 25 sub-commands or groups per level"));
    }
    if let Some(p) = &c.default_member_permissions
        && p.parse::<u64>().is_err()
    {
        return Err(format!(
            "{at}: default-member-permissions must be a decimal bitset, got `{p}`"
        ));
    }
    Ok(())
}

/// Checks everything the host and Discord require of a manifest.
/// Names the host uses for itself in `config/plugins.json` and the logs.
pub const RESERVED_NAMES: &[&str] = &["rules", "host", "kdhost"];

pub fn validate(m: &Manifest) -> Result<(), String> {
    if !PLUGIN_NAME.is_match(&m.name) {
        return Err(format!(
            "plugin name `{}` must be 1-32 lowercase letters, digits, `-` or `_`, starting with a letter or digit",
            m.name
        ));
    }
    if RESERVED_NAMES.contains(&m.name.as_str()) {
        return Err(format!(
            "plugin name `{}` is reserved (`rules` names the guild rules in config/plugins.json)",
            m.name
        ));
    }
    if semver::Version::parse(&m.version).is_err() {
        return Err(format!(
            "version `{}` is not a semantic version (like 1.2.3)",
            m.version
        ));
    }
    if chars(&m.description) > 200 {
        return Err("description is over 200 characters".into());
    }
    let mut names = HashSet::new();
    for c in &m.commands {
        check_command(c)?;
        if !names.insert((c.name.as_str(), c.kind as u8)) {
            return Err(format!("command `{}` is defined twice", c.name));
        }
    }
    for e in &m.events {
        if !EVENT_KIND.is_match(e) {
            return Err(format!(
                "event `{e}` is not a valid event kind (like kaltura.entry.ready)"
            ));
        }
    }
    Ok(())
}

/// An option with nothing but a name, a kind and whether it is required (unit tests).
#[cfg(test)]
pub(crate) fn test_option(name: &str, kind: OptionKind, required: bool) -> OptionDef {
    OptionDef {
        name: name.into(),
        description: "d".into(),
        kind,
        required,
        choices: vec![],
        autocomplete: false,
        min_value: None,
        max_value: None,
        min_length: None,
        max_length: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::bindings::types::OptionDef;

    fn manifest(cmd: CommandDef) -> Manifest {
        Manifest {
            name: "p".into(),
            version: "1.0.0".into(),
            description: String::new(),
            commands: vec![cmd],
            events: vec![],
            capabilities: vec![],
        }
    }

    fn cmd(name: &str) -> CommandDef {
        CommandDef {
            name: name.into(),
            description: "d".into(),
            kind: CommandKind::ChatInput,
            options: vec![],
            subcommands: vec![],
            default_member_permissions: None,
            dm: false,
            nsfw: false,
        }
    }

    #[test]
    fn the_hosts_own_names_are_reserved() {
        for name in RESERVED_NAMES {
            let mut m = manifest(cmd("x"));
            m.name = name.to_string();
            assert!(validate(&m).unwrap_err().contains("reserved"), "{name}");
        }
    }

    fn opt(name: &str, required: bool) -> OptionDef {
        super::test_option(name, OptionKind::Text, required)
    }

    #[test]
    fn names_follow_discord() {
        assert!(validate(&manifest(cmd("kaltura-video_search"))).is_ok());
        assert!(validate(&manifest(cmd("héllo"))).is_ok());
        assert!(
            validate(&manifest(cmd("Hello")))
                .unwrap_err()
                .contains("lowercase")
        );
        assert!(validate(&manifest(cmd("with space"))).is_err());
        assert!(validate(&manifest(cmd(&"a".repeat(33)))).is_err());
    }

    #[test]
    fn option_rules() {
        let mut c = cmd("x");
        c.options = (0..26).map(|i| opt(&format!("o{i}"), false)).collect();
        assert!(validate(&manifest(c)).unwrap_err().contains("26 options"));
        let mut c = cmd("x");
        c.options = vec![opt("a", false), opt("b", true)];
        assert!(
            validate(&manifest(c))
                .unwrap_err()
                .contains("before optional")
        );
        let mut c = cmd("x");
        c.options = vec![opt("a", false), opt("a", false)];
        assert!(validate(&manifest(c)).unwrap_err().contains("twice"));
    }

    #[test]
    fn duplicate_commands_and_bad_plugin_names() {
        let mut m = manifest(cmd("x"));
        m.commands.push(cmd("x"));
        assert!(validate(&m).unwrap_err().contains("defined twice"));
        let mut m = manifest(cmd("x"));
        m.name = "Bad Name".into();
        assert!(validate(&m).is_err());
        let mut m = manifest(cmd("x"));
        m.version = "one".into();
        assert!(validate(&m).unwrap_err().contains("semantic version"));
    }
}
