//! Convenient accessors on what the host passes in.

use crate::{CommandInput, ModalInput, OptionValue};

impl CommandInput {
    /// The raw value of an option.
    pub fn value(&self, name: &str) -> Option<&OptionValue> {
        self.options
            .iter()
            .find(|o| o.name == name)
            .map(|o| &o.value)
    }

    /// A string option.
    pub fn text(&self, name: &str) -> Option<&str> {
        match self.value(name)? {
            OptionValue::Text(s) => Some(s),
            _ => None,
        }
    }

    /// An integer option.
    pub fn integer(&self, name: &str) -> Option<i64> {
        match self.value(name)? {
            OptionValue::Integer(i) => Some(*i),
            _ => None,
        }
    }

    /// A number option (integers are widened).
    pub fn number(&self, name: &str) -> Option<f64> {
        match self.value(name)? {
            OptionValue::Number(n) => Some(*n),
            OptionValue::Integer(i) => Some(*i as f64),
            _ => None,
        }
    }

    /// A boolean option.
    pub fn boolean(&self, name: &str) -> Option<bool> {
        match self.value(name)? {
            OptionValue::Boolean(b) => Some(*b),
            _ => None,
        }
    }

    /// A user, channel, role, mentionable or attachment option (its id).
    pub fn id(&self, name: &str) -> Option<&str> {
        match self.value(name)? {
            OptionValue::Id(s) => Some(s),
            _ => None,
        }
    }

    /// The option being typed, for autocomplete.
    pub fn focused(&self) -> Option<(&str, &OptionValue)> {
        self.options
            .iter()
            .find(|o| o.focused)
            .map(|o| (o.name.as_str(), &o.value))
    }

    /// The sub-command being used, if any (the innermost name of `path`).
    pub fn subcommand(&self) -> Option<&str> {
        self.path.last().map(String::as_str)
    }
}

impl ModalInput {
    /// The value typed into a text input.
    pub fn field(&self, custom_id: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(id, _)| id == custom_id)
            .map(|(_, v)| v.as_str())
    }
}
