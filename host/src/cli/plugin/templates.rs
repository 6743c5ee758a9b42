//! The files of a new plugin project, for `kdhost plugin new NAME --lang rust|js|python`.
//! Each builds as generated with `kdhost plugin build`. JavaScript and Python projects have a
//! README, their world (`wit/world.wit`; the contract is written to `wit/deps/` by `plugin
//! new` and refreshed by every build), a `/NAME` command that replies with an embed and a
//! button, and a test that runs it with `kdhost plugin test`.

use std::path::Path;

use anyhow::{Context, Result};

use crate::plugins::bindings::CONTRACT_FILES;

/// Where the contract goes in a JavaScript or Python project.
pub const CONTRACT_DIR: &str = "wit/deps/kaltura-discord-plugin";

/// Writes the contract the project builds against (refreshed on every build).
pub fn write_contract(dir: &Path) -> Result<()> {
    let deps = dir.join(CONTRACT_DIR);
    std::fs::create_dir_all(&deps).with_context(|| format!("creating {}", deps.display()))?;
    for (file, text) in CONTRACT_FILES {
        std::fs::write(deps.join(file), text)?;
    }
    Ok(())
}

/// WIT identifiers allow `-` but not `_`.
pub fn world_name(name: &str) -> String {
    name.replace('_', "-")
}

fn world_file(name: &str) -> String {
    format!(
        r#"package local:{world};

// This plugin's world: what every plugin exports, plus the capabilities it imports.
// Add an import for each capability you request in the manifest (and only those:
// the host refuses a component that imports more than it requests).
world {world} {{
    import kaltura-discord:plugin/log@0.1.2;
    include kaltura-discord:plugin/handlers@0.1.2;
}}
"#,
        world = world_name(name)
    )
}

fn readme(name: &str, lang: &str, setup: &str, test: &str) -> String {
    let world = world_name(name);
    format!(
        "# {name}\n\nA kaltura-discord plugin in {lang}.\n\n```sh\n{setup}\nkdhost plugin build .                      # → {world}.wasm, checked as the host loads it\nkdhost plugin test {world}.wasm --command '/{name} who:Ada'   # run it, see every host call\n{test}\n```\n\n\
         Then copy `{world}.wasm` into the host's plugins folder: it loads within a second.\n\n\
         - `wit/world.wit` lists the capabilities this plugin imports; request the same ones in\n  the manifest, and ask the operator to grant them (`config/plugins.json`).\n\
         - `wit/deps/kaltura-discord-plugin/` is the contract (`kdhost plugin build` refreshes it).\n"
    )
}

pub fn js(name: &str) -> Vec<(String, String)> {
    let world = world_name(name);
    vec![
        (
            "package.json".into(),
            serde_json::to_string_pretty(&serde_json::json!({
                "name": name,
                "version": "0.1.0",
                "private": true,
                "type": "module",
                "main": "plugin.js",
                "scripts": {"build": "kdhost plugin build .", "test": "node --test"},
                "devDependencies": {
                    "@bytecodealliance/componentize-js": "0.23.0",
                    "@bytecodealliance/jco": "1.15.1"
                }
            }))
            .expect("static JSON")
                + "\n",
        ),
        ("wit/world.wit".into(), world_file(name)),
        (
            ".gitignore".into(),
            "node_modules/\nwit/deps/\n*.wasm\n".into(),
        ),
        (
            "plugin.js".into(),
            format!(
                r#"// The `{name}` kaltura-discord plugin.
import {{ log }} from 'kaltura-discord:plugin/log@0.1.2';

export function manifest() {{
  return {{
    name: '{name}',
    version: '0.1.0',
    description: 'Describe your plugin',
    commands: [{{
      name: '{name}',
      description: 'Say hello',
      kind: 'chat-input',
      options: [{{
        name: 'who', description: 'Who to greet', kind: 'text', required: false, choices: [],
        autocomplete: false, minValue: undefined, maxValue: undefined, minLength: undefined, maxLength: undefined,
      }}],
      subcommands: [],
      defaultMemberPermissions: undefined,
      dm: false,
      nsfw: false,
    }}],
    events: [],
    capabilities: ['log'],
  }};
}}

export function handleCommand(input) {{
  const who = input.options.find((o) => o.name === 'who')?.value.val ?? 'world';
  log('info', `greeting ${{who}}`);
  const embed = {{
    title: `Hello, ${{who}}!`, description: undefined, url: undefined, color: 0x5865f2, fields: [],
    author: undefined, footer: undefined, imageUrl: undefined, thumbnailUrl: undefined, timestamp: undefined,
  }};
  const again = {{ tag: 'button', val: {{ style: 'primary', label: 'Again', customId: 'again', url: undefined, emoji: undefined, disabled: false }} }};
  return {{ tag: 'message', val: {{ content: undefined, embeds: [embed], components: [{{ components: [again] }}], ephemeral: false }} }};
}}

export function handleComponent(input) {{
  if (input.customId !== 'again') throw `unknown button ${{input.customId}}`;
  return {{ tag: 'message', val: {{ content: 'Hello again!', embeds: [], components: [], ephemeral: true }} }};
}}

export function handleAutocomplete(_input) {{
  return {{ tag: 'choices', val: [] }};
}}

export function handleModal(input) {{
  throw `modal ${{input.customId}} is not handled`;
}}

export function handleEvent(_ev) {{}}
"#
            ),
        ),
        (
            "test/plugin.test.mjs".into(),
            format!(
                r#"// Runs /{name} in the host's sandbox with `kdhost plugin test` (build first).
import {{ test }} from 'node:test';
import assert from 'node:assert/strict';
import {{ execFileSync }} from 'node:child_process';

test('/{name} replies with an embed and a button', () => {{
  const kdhost = process.env.KDHOST ?? 'kdhost';
  const out = execFileSync(kdhost, ['plugin', 'test', '{world}.wasm', '--command', '/{name} who:Ada', '--json']);
  const run = JSON.parse(out.toString());
  assert.equal(run.ok, true);
  assert.equal(run.response.data.embeds[0].title, 'Hello, Ada!');
  assert.equal(run.response.data.components[0].components[0].custom_id, '{name}:again');
  assert.equal(run.host_calls[0].capability, 'log');
}});
"#
            ),
        ),
        (
            "README.md".into(),
            readme(
                name,
                "JavaScript",
                "npm install                               # jco + componentize-js (Node.js 20+)",
                "npm test                                  # runs test/plugin.test.mjs",
            ),
        ),
    ]
}

/// The Python project. Long by nature: mostly the files' text.
pub fn python(name: &str) -> Vec<(String, String)> {
    let world = world_name(name);
    vec![
        (
            "requirements.txt".into(),
            "componentize-py==0.25.1\n".into(),
        ),
        ("wit/world.wit".into(), world_file(name)),
        (
            ".gitignore".into(),
            "wit/deps/\n*.wasm\n__pycache__/\n".into(),
        ),
        (
            "app.py".into(),
            format!(
                r#""""The `{name}` kaltura-discord plugin."""

from componentize_py_types import Err
from wit_world import WitWorld
from wit_world.imports import log
from wit_world.imports.types import (
    ActionRow, Button, ButtonStyle, Capability, CommandDef, CommandKind, Component_Button,
    Embed, Manifest, Message, OptionDef, OptionKind, OptionValue_Text, Response_Choices,
    Response_Message,
)


class WitWorld(WitWorld):
    def manifest(self):
        who = OptionDef("who", "Who to greet", OptionKind.TEXT, False, [], False, None, None, None, None)
        command = CommandDef("{name}", "Say hello", CommandKind.CHAT_INPUT, [who], [], None, False, False)
        return Manifest("{name}", "0.1.0", "Describe your plugin", [command], [], [Capability.LOG])

    def handle_command(self, cmd):
        who = next((o.value.value for o in cmd.options
                    if o.name == "who" and isinstance(o.value, OptionValue_Text)), "world")
        log.log(log.Level.INFO, f"greeting {{who}}")
        embed = Embed(f"Hello, {{who}}!", None, None, 0x5865F2, [], None, None, None, None, None)
        again = Component_Button(Button(ButtonStyle.PRIMARY, "Again", "again", None, None, False))
        return Response_Message(Message(None, [embed], [ActionRow([again])], False))

    def handle_component(self, inp):
        if inp.custom_id != "again":
            raise Err(f"unknown button {{inp.custom_id}}")
        return Response_Message(Message("Hello again!", [], [], True))

    def handle_autocomplete(self, cmd):
        return Response_Choices([])

    def handle_modal(self, inp):
        raise Err(f"modal {{inp.custom_id}} is not handled")

    def handle_event(self, ev):
        return None
"#
            ),
        ),
        (
            "test_plugin.py".into(),
            format!(
                r#""""Runs /{name} in the host's sandbox with `kdhost plugin test` (build first)."""

import json
import os
import subprocess
import unittest


class PluginTest(unittest.TestCase):
    def test_replies_with_an_embed_and_a_button(self):
        kdhost = os.environ.get("KDHOST", "kdhost")
        out = subprocess.run(
            [kdhost, "plugin", "test", "{world}.wasm", "--command", "/{name} who:Ada", "--json"],
            check=True, capture_output=True,
        )
        run = json.loads(out.stdout)
        self.assertTrue(run["ok"])
        self.assertEqual(run["response"]["data"]["embeds"][0]["title"], "Hello, Ada!")
        self.assertEqual(run["response"]["data"]["components"][0]["components"][0]["custom_id"], "{name}:again")
        self.assertEqual(run["host_calls"][0]["capability"], "log")


if __name__ == "__main__":
    unittest.main()
"#
            ),
        ),
        (
            "README.md".into(),
            readme(
                name,
                "Python",
                "pip install -r requirements.txt           # componentize-py",
                "python3 -m unittest                       # runs test_plugin.py",
            ),
        ),
    ]
}

/// The files of a new Rust plugin crate, built against the SDK at `sdk`.
pub fn rust(name: &str, sdk: &Path) -> Vec<(&'static str, String)> {
    let cmd = name.replace('_', "-");
    vec![
        (
            "Cargo.toml",
            format!(
                r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
kd-plugin = {{ path = {sdk:?} }}

[profile.release]
opt-level = "s"
strip = true

# A plugin is its own workspace, wherever it is created.
[workspace]
"#,
                sdk = sdk.display().to_string()
            ),
        ),
        (
            ".cargo/config.toml",
            "[build]\ntarget = \"wasm32-wasip2\"\n".into(),
        ),
        (".gitignore", "target/\n".into()),
        (
            "src/lib.rs",
            format!(
                r#"//! The `{name}` kaltura-discord plugin.

use kd_plugin::prelude::*;

struct Plugin_;

impl Plugin for Plugin_ {{
    fn manifest() -> Manifest {{
        ManifestBuilder::new("{name}", env!("CARGO_PKG_VERSION"), "Describe your plugin")
            .command(CommandBuilder::new("{cmd}", "Say hello").option(OptionBuilder::text("name", "Who to greet")))
            .build()
    }}

    fn on_command(cmd: CommandInput) -> Result<Response, String> {{
        let who = cmd.text("name").unwrap_or("world").to_string();
        let embed = EmbedBuilder::new().title(format!("Hello, {{who}}!")).color(0x5865F2).build();
        Ok(MessageBuilder::new()
            .embed(embed)
            .button(ButtonBuilder::primary("again", "Again"))
            .into_response())
    }}

    fn on_component(input: ComponentInput) -> Result<Response, String> {{
        match input.custom_id.as_str() {{
            "again" => Ok(reply_ephemeral("Hello again!")),
            other => Err(format!("unknown button {{other}}")),
        }}
    }}
}}

export_plugin!(Plugin_);
"#
            ),
        ),
        (
            "README.md",
            format!(
                "# {name}\n\nA kaltura-discord plugin.\n\n```sh\ncargo build --release\nkdhost plugin check target/wasm32-wasip2/release/{file}.wasm\ncp target/wasm32-wasip2/release/{file}.wasm /path/to/host/plugins/\n```\n\n\
                 Needs the wasm32-wasip2 target once: `rustup target add wasm32-wasip2`.\n\
                 Ask the operator to grant the capabilities your manifest requests (config/plugins.json).\n",
                file = name.replace('-', "_")
            ),
        ),
    ]
}
