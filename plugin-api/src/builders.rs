//! Builders for manifests, messages, embeds and components.

use crate::bindings::kaltura_discord::plugin::types::Button;
use crate::{
    ActionRow, ButtonStyle, Capability, Choice, ChoiceValue, CommandDef, CommandKind, Component,
    Embed, EmbedField, Manifest, Message, Modal, OptionDef, OptionKind, Response, SelectMenu,
    SelectOption, SubcommandDef, TextInput, TextInputStyle,
};

/// Builds a [`Manifest`].
pub struct ManifestBuilder(Manifest);

impl ManifestBuilder {
    pub fn new(name: &str, version: &str, description: &str) -> Self {
        Self(Manifest {
            name: name.into(),
            version: version.into(),
            description: description.into(),
            commands: Vec::new(),
            events: Vec::new(),
            capabilities: Vec::new(),
        })
    }
    pub fn command(mut self, cmd: CommandBuilder) -> Self {
        self.0.commands.push(cmd.build());
        self
    }
    /// Subscribe to an event kind, e.g. `"kaltura.entry.ready"`.
    pub fn event(mut self, kind: &str) -> Self {
        self.0.events.push(kind.into());
        self
    }
    /// Request a capability. Ask only for what you call.
    pub fn capability(mut self, cap: Capability) -> Self {
        if !self.0.capabilities.contains(&cap) {
            self.0.capabilities.push(cap);
        }
        self
    }
    pub fn build(self) -> Manifest {
        self.0
    }
}

/// Builds a [`CommandDef`].
pub struct CommandBuilder(CommandDef);

impl CommandBuilder {
    /// A slash command.
    pub fn new(name: &str, description: &str) -> Self {
        Self(CommandDef {
            name: name.into(),
            description: description.into(),
            kind: CommandKind::ChatInput,
            options: Vec::new(),
            subcommands: Vec::new(),
            default_member_permissions: None,
            dm: false,
            nsfw: false,
        })
    }
    pub fn kind(mut self, kind: CommandKind) -> Self {
        self.0.kind = kind;
        self
    }
    pub fn option(mut self, opt: OptionBuilder) -> Self {
        self.0.options.push(opt.0);
        self
    }
    /// A sub-command with its own options (`group` = its sub-command group, if any).
    pub fn subcommand(
        mut self,
        name: &str,
        description: &str,
        group: Option<&str>,
        options: Vec<OptionBuilder>,
    ) -> Self {
        self.0.subcommands.push(SubcommandDef {
            name: name.into(),
            description: description.into(),
            group: group.map(Into::into),
            options: options.into_iter().map(|o| o.0).collect(),
        });
        self
    }
    /// Only administrators see the command by default (guild admins can change it).
    pub fn admin_only(mut self) -> Self {
        self.0.default_member_permissions = Some("0".into());
        self
    }
    pub fn dm(mut self, allowed: bool) -> Self {
        self.0.dm = allowed;
        self
    }
    pub fn build(self) -> CommandDef {
        self.0
    }
}

/// Builds an [`OptionDef`].
pub struct OptionBuilder(OptionDef);

macro_rules! option_ctor {
    ($($fn_name:ident => $kind:ident),* $(,)?) => {
        $(pub fn $fn_name(name: &str, description: &str) -> Self {
            Self::of(OptionKind::$kind, name, description)
        })*
    };
}

impl OptionBuilder {
    pub fn of(kind: OptionKind, name: &str, description: &str) -> Self {
        Self(OptionDef {
            name: name.into(),
            description: description.into(),
            kind,
            required: false,
            choices: Vec::new(),
            autocomplete: false,
            min_value: None,
            max_value: None,
            min_length: None,
            max_length: None,
        })
    }
    option_ctor!(
        text => Text, integer => Integer, boolean => Boolean, user => User,
        channel => Channel, role => Role, mentionable => Mentionable, number => Number,
        attachment => Attachment,
    );
    pub fn required(mut self) -> Self {
        self.0.required = true;
        self
    }
    pub fn autocomplete(mut self) -> Self {
        self.0.autocomplete = true;
        self
    }
    pub fn choice(mut self, name: &str, value: ChoiceValue) -> Self {
        self.0.choices.push(Choice {
            name: name.into(),
            value,
        });
        self
    }
    pub fn range(mut self, min: f64, max: f64) -> Self {
        self.0.min_value = Some(min);
        self.0.max_value = Some(max);
        self
    }
    pub fn length(mut self, min: u16, max: u16) -> Self {
        self.0.min_length = Some(min);
        self.0.max_length = Some(max);
        self
    }
}

/// Builds an [`Embed`].
#[derive(Default)]
pub struct EmbedBuilder(Embed);

impl Default for Embed {
    fn default() -> Self {
        Embed {
            title: None,
            description: None,
            url: None,
            color: None,
            fields: Vec::new(),
            author: None,
            footer: None,
            image_url: None,
            thumbnail_url: None,
            timestamp: None,
        }
    }
}

impl EmbedBuilder {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn title(mut self, s: impl Into<String>) -> Self {
        self.0.title = Some(s.into());
        self
    }
    pub fn description(mut self, s: impl Into<String>) -> Self {
        self.0.description = Some(s.into());
        self
    }
    pub fn url(mut self, s: impl Into<String>) -> Self {
        self.0.url = Some(s.into());
        self
    }
    pub fn color(mut self, rgb: u32) -> Self {
        self.0.color = Some(rgb);
        self
    }
    pub fn field(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
        inline: bool,
    ) -> Self {
        self.0.fields.push(EmbedField {
            name: name.into(),
            value: value.into(),
            inline,
        });
        self
    }
    pub fn author(mut self, s: impl Into<String>) -> Self {
        self.0.author = Some(s.into());
        self
    }
    pub fn footer(mut self, s: impl Into<String>) -> Self {
        self.0.footer = Some(s.into());
        self
    }
    pub fn image(mut self, url: impl Into<String>) -> Self {
        self.0.image_url = Some(url.into());
        self
    }
    pub fn thumbnail(mut self, url: impl Into<String>) -> Self {
        self.0.thumbnail_url = Some(url.into());
        self
    }
    pub fn timestamp(mut self, iso8601: impl Into<String>) -> Self {
        self.0.timestamp = Some(iso8601.into());
        self
    }
    pub fn build(self) -> Embed {
        self.0
    }
}

/// Builds a button.
pub struct ButtonBuilder(Button);

impl ButtonBuilder {
    fn styled(style: ButtonStyle, custom_id: &str, label: &str) -> Self {
        Self(Button {
            style,
            label: Some(label.into()),
            custom_id: Some(custom_id.into()),
            url: None,
            emoji: None,
            disabled: false,
        })
    }
    pub fn primary(custom_id: &str, label: &str) -> Self {
        Self::styled(ButtonStyle::Primary, custom_id, label)
    }
    pub fn secondary(custom_id: &str, label: &str) -> Self {
        Self::styled(ButtonStyle::Secondary, custom_id, label)
    }
    pub fn success(custom_id: &str, label: &str) -> Self {
        Self::styled(ButtonStyle::Success, custom_id, label)
    }
    pub fn danger(custom_id: &str, label: &str) -> Self {
        Self::styled(ButtonStyle::Danger, custom_id, label)
    }
    /// A button that opens a URL (no interaction reaches the plugin).
    pub fn link(url: &str, label: &str) -> Self {
        Self(Button {
            style: ButtonStyle::Link,
            label: Some(label.into()),
            custom_id: None,
            url: Some(url.into()),
            emoji: None,
            disabled: false,
        })
    }
    pub fn emoji(mut self, emoji: &str) -> Self {
        self.0.emoji = Some(emoji.into());
        self
    }
    pub fn disabled(mut self) -> Self {
        self.0.disabled = true;
        self
    }
    pub fn build(self) -> Component {
        Component::Button(self.0)
    }
}

/// Builds a string select menu.
pub struct SelectBuilder(SelectMenu);

impl SelectBuilder {
    pub fn new(custom_id: &str) -> Self {
        Self(SelectMenu {
            custom_id: custom_id.into(),
            placeholder: None,
            options: Vec::new(),
            min_values: 1,
            max_values: 1,
            disabled: false,
        })
    }
    pub fn placeholder(mut self, s: &str) -> Self {
        self.0.placeholder = Some(s.into());
        self
    }
    pub fn option(mut self, label: &str, value: &str) -> Self {
        self.0.options.push(SelectOption {
            label: label.into(),
            value: value.into(),
            description: None,
            selected: false,
        });
        self
    }
    pub fn values(mut self, min: u8, max: u8) -> Self {
        self.0.min_values = min;
        self.0.max_values = max;
        self
    }
    pub fn build(self) -> Component {
        Component::Select(self.0)
    }
}

/// Builds a [`Message`]; buttons fill action rows of five automatically.
pub struct MessageBuilder(Message);

impl Default for MessageBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl MessageBuilder {
    pub fn new() -> Self {
        Self(Message {
            content: None,
            embeds: Vec::new(),
            components: Vec::new(),
            ephemeral: false,
        })
    }
    pub fn content(mut self, s: impl Into<String>) -> Self {
        self.0.content = Some(s.into());
        self
    }
    pub fn embed(mut self, e: Embed) -> Self {
        self.0.embeds.push(e);
        self
    }
    /// Add a button to the last row, starting a new row when it is full.
    pub fn button(mut self, b: ButtonBuilder) -> Self {
        let fits = self.0.components.last().is_some_and(|r| {
            r.components.len() < 5
                && r.components
                    .iter()
                    .all(|c| matches!(c, Component::Button(_)))
        });
        if !fits {
            self.0.components.push(ActionRow {
                components: Vec::new(),
            });
        }
        self.0
            .components
            .last_mut()
            .unwrap()
            .components
            .push(b.build());
        self
    }
    /// A select menu takes a row of its own.
    pub fn select(mut self, s: SelectBuilder) -> Self {
        self.0.components.push(ActionRow {
            components: vec![s.build()],
        });
        self
    }
    /// Only the invoking user sees it.
    pub fn ephemeral(mut self) -> Self {
        self.0.ephemeral = true;
        self
    }
    pub fn build(self) -> Message {
        self.0
    }
    /// A new message in reply to the interaction.
    pub fn into_response(self) -> Response {
        Response::Message(self.0)
    }
    /// Replace the message the component is on.
    pub fn into_update(self) -> Response {
        Response::UpdateMessage(self.0)
    }
}

/// Builds a [`Modal`] of text inputs.
pub struct ModalBuilder(Modal);

impl ModalBuilder {
    pub fn new(custom_id: &str, title: &str) -> Self {
        Self(Modal {
            custom_id: custom_id.into(),
            title: title.into(),
            inputs: Vec::new(),
        })
    }
    pub fn input(mut self, custom_id: &str, label: &str, paragraph: bool, required: bool) -> Self {
        self.0.inputs.push(TextInput {
            custom_id: custom_id.into(),
            label: label.into(),
            style: if paragraph {
                TextInputStyle::Paragraph
            } else {
                TextInputStyle::Short
            },
            required,
            placeholder: None,
            value: None,
            min_length: None,
            max_length: None,
        });
        self
    }
    pub fn into_response(self) -> Response {
        Response::Modal(self.0)
    }
}

/// A plain text reply.
pub fn reply(text: impl Into<String>) -> Response {
    MessageBuilder::new().content(text).into_response()
}

/// A plain text reply only the user sees.
pub fn reply_ephemeral(text: impl Into<String>) -> Response {
    MessageBuilder::new()
        .content(text)
        .ephemeral()
        .into_response()
}
