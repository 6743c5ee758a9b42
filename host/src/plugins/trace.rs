//! Every host call a guest makes, captured from the TRACE events the contract bindings emit
//! (span "wit-bindgen import" {module, function}; a "call" event with the arguments and a
//! "return" event with the result). `kdhost plugin test` prints them for plugin authors.

use std::fmt::Write;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// One capability call: `module.function(args) → result`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct HostCall {
    pub capability: String,
    pub function: String,
    pub args: String,
    pub result: String,
}

/// Collects host calls into a shared list.
#[derive(Clone, Default)]
pub struct HostCallRecorder {
    pub calls: Arc<Mutex<Vec<HostCall>>>,
}

struct ImportSpan {
    module: String,
    function: String,
}

#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        // The event's own message is "call" or "return"; a WIT parameter may also be named
        // `message` (log.log), and then it is an argument like any other.
        if field.name() == "message" && (text == "call" || text == "return") {
            self.message = text;
        } else {
            if !self.rest.is_empty() {
                self.rest.push_str(", ");
            }
            let _ = write!(self.rest, "{}: {text}", field.name());
        }
    }
}

impl<S> Layer<S> for HostCallRecorder
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != "wit-bindgen import" {
            return;
        }
        #[derive(Default)]
        struct Names(String, String);
        impl Visit for Names {
            fn record_str(&mut self, field: &Field, value: &str) {
                match field.name() {
                    "module" => self.0 = value.to_string(),
                    "function" => self.1 = value.to_string(),
                    _ => {}
                }
            }
            fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
                self.record_str(field, format!("{value:?}").trim_matches('"'));
            }
        }
        let mut names = Names::default();
        attrs.record(&mut names);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(ImportSpan {
                module: names.0,
                function: names.1,
            });
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.event_span(event) else {
            return;
        };
        let ext = span.extensions();
        let Some(import) = ext.get::<ImportSpan>() else {
            return;
        };
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut calls = self.calls.lock().unwrap();
        match fields.message.as_str() {
            "call" => calls.push(HostCall {
                capability: import.module.clone(),
                function: import.function.clone(),
                args: fields.rest,
                result: String::new(),
            }),
            "return" => {
                let open = calls.iter_mut().rev().find(|c| {
                    c.result.is_empty()
                        && c.capability == import.module
                        && c.function == import.function
                });
                if let Some(c) = open {
                    c.result = fields.rest.trim_start_matches("result: ").to_string();
                }
            }
            _ => {}
        }
    }
}
