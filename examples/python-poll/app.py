"""Example plugin `poll` (Python): `/poll question options` posts a poll with one button
per option; votes are counted in `kv` with the atomic `kv.increment`, and each person's own
vote is kept in their own scope (`kv.user_get`/`user_set`, contract 0.1.2: in their export,
gone when they delete their data). The results embed updates on every vote, and the poll's
author can close it. On `privacy.erase` the plugin forgets the erased person as the author
of its polls in that server. The same plugin exists in Rust and JavaScript.

Build: `kdhost plugin build .` (needs `pip install -r requirements.txt`).
"""

import json

from componentize_py_types import Err
from wit_world import WitWorld
from wit_world.imports import kv
from wit_world.imports.types import (
    ActionRow, Button, ButtonStyle, Capability, CommandDef, CommandKind, Component_Button,
    Embed, EmbedField, Manifest, Message, OptionDef, OptionKind, OptionValue_Text,
    Response_Choices, Response_Message, Response_UpdateMessage,
)

MAX_OPTIONS = 10
BAR = 12


def host_call(f, *args):
    """A failed host call raises Err(cap-error); answer with its explanation."""
    try:
        return f(*args)
    except Err as e:
        raise Err(f"{type(e.value).__name__.split('_')[-1].lower()}: {e.value.value}")


def text(cmd, name):
    for o in cmd.options:
        if o.name == name and isinstance(o.value, OptionValue_Text):
            return o.value.value
    return None


def truncate(s, limit):
    return s if len(s) <= limit else s[: limit - 1] + "…"


def reply(content, ephemeral=True):
    return Response_Message(Message(content, [], [], ephemeral))


def button(custom_id, label, style):
    return Component_Button(Button(style, label, custom_id, None, None, False))


def load(poll_id):
    raw = host_call(kv.get, f"poll:{poll_id}")
    return None if raw is None else json.loads(raw)


def save(poll_id, poll):
    host_call(kv.set, f"poll:{poll_id}", json.dumps(poll).encode())


def counter(key):
    raw = host_call(kv.get, key)
    return 0 if raw is None else int(raw.decode())


def counts(poll_id, n):
    return [counter(f"poll:{poll_id}:count:{i}") for i in range(n)]


def vote(poll_id, choice):
    """One vote per person (in their own scope): moving a vote decrements the old option's
    counter."""
    mine = f"poll:{poll_id}:vote"
    raw = host_call(kv.user_get, mine)
    previous = None if raw is None else int(raw.decode())
    if previous == choice:
        return
    if previous is not None:
        host_call(kv.increment, f"poll:{poll_id}:count:{previous}", -1)
    host_call(kv.increment, f"poll:{poll_id}:count:{choice}", 1)
    host_call(kv.user_set, mine, str(choice).encode())


def render(poll_id, poll, votes):
    total = sum(votes)
    closed = poll["closed"]
    fields = []
    for i, (option, count) in enumerate(zip(poll["options"], votes)):
        filled = (count * BAR) // total if total else 0
        fields.append(EmbedField(truncate(f"{i + 1}. {option}", 200), "█" * filled + "░" * (BAR - filled) + f" {count}", False))
    footer = f"{total} vote{'' if total == 1 else 's'}{' · closed' if closed else ''}"
    embed = Embed(truncate(poll["question"], 256), None, None, 0x99AAB5 if closed else 0x5865F2,
                  fields, None, footer, None, None, None)
    rows = []
    if not closed:
        buttons = [button(f"vote:{poll_id}:{i}", truncate(o, 80), ButtonStyle.SECONDARY) for i, o in enumerate(poll["options"])]
        rows = [ActionRow(buttons[i:i + 5]) for i in range(0, len(buttons), 5)]
        rows.append(ActionRow([button(f"close:{poll_id}", "Close poll", ButtonStyle.DANGER)]))
    return Message(None, [embed], rows, False)


class WitWorld(WitWorld):
    def manifest(self):
        def option(name, description, min_length, max_length):
            return OptionDef(name, description, OptionKind.TEXT, True, [], False, None, None, min_length, max_length)

        command = CommandDef("poll", "Start a poll", CommandKind.CHAT_INPUT, [
            option("question", "What to ask", 1, 200),
            option("options", "Choices, separated by commas (2-10)", 3, 500),
        ], [], None, False, False)
        return Manifest("poll", "0.1.0", "Quick polls with buttons", [command], ["privacy.erase"], [Capability.KV])

    def handle_command(self, cmd):
        question = (text(cmd, "question") or "").strip()
        options = [o.strip() for o in (text(cmd, "options") or "").split(",") if o.strip()]
        if not 2 <= len(options) <= MAX_OPTIONS:
            return reply(f"A poll needs 2 to {MAX_OPTIONS} options separated by commas (got {len(options)}).")
        # The interaction id is unique: it names the poll.
        poll_id = cmd.context.interaction_id
        poll = {"question": question, "options": options, "owner": cmd.context.user.id, "closed": False}
        save(poll_id, poll)
        return Response_Message(render(poll_id, poll, [0] * len(options)))

    def handle_component(self, inp):
        parts = inp.custom_id.split(":")
        if not ((parts[0] == "vote" and len(parts) == 3) or (parts[0] == "close" and len(parts) == 2)):
            raise Err(f"unknown control `{inp.custom_id}`")
        poll_id = parts[1]
        poll = load(poll_id)
        if poll is None:
            return reply("This poll is gone.")
        if poll["closed"]:
            return reply("This poll is closed.")
        user = inp.context.user.id
        if parts[0] == "close":
            if poll["owner"] != user:
                return reply("Only the poll's author can close it.")
            poll["closed"] = True
            save(poll_id, poll)
        else:
            choice = int(parts[2])
            if not 0 <= choice < len(poll["options"]):
                raise Err("bad option")
            vote(poll_id, choice)
        return Response_UpdateMessage(render(poll_id, poll, counts(poll_id, len(poll["options"]))))

    def handle_autocomplete(self, cmd):
        return Response_Choices([])

    def handle_modal(self, inp):
        raise Err(f"modal `{inp.custom_id}` is not handled")

    def handle_event(self, ev):
        """`privacy.erase`: the host already deleted the person's own scope; what this
        plugin keeps elsewhere about them is the author of each poll in the server's scope."""
        if ev.kind != "privacy.erase" or ev.guild_id is None:
            return None
        user = json.loads(ev.payload)["user"]
        for key in host_call(kv.list_keys, "poll:"):
            if key.count(":") != 1:
                continue  # counters, not polls
            poll_id = key[len("poll:"):]
            poll = load(poll_id)
            if poll is not None and poll["owner"] == user:
                poll["owner"] = None
                save(poll_id, poll)
        return None
