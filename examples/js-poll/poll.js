// Example plugin `poll` (JavaScript): `/poll question options` posts a poll with one button
// per option; votes are counted in `kv` with the atomic `kv.increment`, and each person's
// own vote is kept in their own scope (`kv.userGet`/`userSet`, contract 0.1.2: in their
// export, gone when they delete their data). The results embed updates on every vote, and
// the poll's author can close it. On `privacy.erase` the plugin forgets the erased person
// as the author of its polls in that server. The same plugin exists in Rust and Python.
import * as kv from 'kaltura-discord:plugin/kv@0.1.2';

const MAX_OPTIONS = 10;
const BAR = 12;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

// A failed host call throws; its payload is the contract's cap-error ({tag, val}).
function hostCall(f) {
  try {
    return f();
  } catch (e) {
    throw e.payload ? `${e.payload.tag}: ${e.payload.val}` : String(e);
  }
}

function text(input, name) {
  const o = input.options.find((o) => o.name === name);
  return o && o.value.tag === 'text' ? o.value.val : undefined;
}

function truncate(s, max) {
  return [...s].length <= max ? s : [...s].slice(0, max - 1).join('') + '…';
}

function message(content, ephemeral) {
  return { content, embeds: [], components: [], ephemeral };
}

function button(customId, label, style) {
  return { tag: 'button', val: { style, label, customId, url: undefined, emoji: undefined, disabled: false } };
}

function load(id) {
  const raw = hostCall(() => kv.get(`poll:${id}`));
  return raw === undefined ? undefined : JSON.parse(decoder.decode(raw));
}

function save(id, poll) {
  hostCall(() => kv.set(`poll:${id}`, encoder.encode(JSON.stringify(poll))));
}

function counter(key) {
  const raw = hostCall(() => kv.get(key));
  return raw === undefined ? 0 : Number(decoder.decode(raw));
}

// Votes minus votes moved away (see `vote`).
function counts(id, n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    out.push(counter(`poll:${id}:count:${i}`) - counter(`poll:${id}:moved:${i}`));
  }
  return out;
}

// One vote per person: moving a vote counts one more "moved away" for the old option.
// (Both counters only grow: componentize-js 0.23 traps when a negative s64 is passed to
// the host, so this plugin never calls `kv.increment` with a negative delta.)
function vote(id, choice) {
  const mine = `poll:${id}:vote`;
  const raw = hostCall(() => kv.userGet(mine));
  const previous = raw === undefined ? undefined : Number(decoder.decode(raw));
  if (previous === choice) return;
  if (previous !== undefined) hostCall(() => kv.increment(`poll:${id}:moved:${previous}`, 1n));
  hostCall(() => kv.increment(`poll:${id}:count:${choice}`, 1n));
  hostCall(() => kv.userSet(mine, encoder.encode(String(choice))));
}

function render(id, poll, votes) {
  const total = votes.reduce((a, b) => a + b, 0);
  const fields = poll.options.map((option, i) => {
    const filled = total > 0 ? Math.floor((votes[i] * BAR) / total) : 0;
    return {
      name: truncate(`${i + 1}. ${option}`, 200),
      value: `${'█'.repeat(filled)}${'░'.repeat(BAR - filled)} ${votes[i]}`,
      inline: false,
    };
  });
  const embed = {
    title: truncate(poll.question, 256),
    description: undefined,
    url: undefined,
    color: poll.closed ? 0x99aab5 : 0x5865f2,
    fields,
    author: undefined,
    footer: `${total} vote${total === 1 ? '' : 's'}${poll.closed ? ' · closed' : ''}`,
    imageUrl: undefined,
    thumbnailUrl: undefined,
    timestamp: undefined,
  };
  const components = [];
  if (!poll.closed) {
    const buttons = poll.options.map((o, i) => button(`vote:${id}:${i}`, truncate(o, 80), 'secondary'));
    for (let i = 0; i < buttons.length; i += 5) components.push({ components: buttons.slice(i, i + 5) });
    components.push({ components: [button(`close:${id}`, 'Close poll', 'danger')] });
  }
  return { content: undefined, embeds: [embed], components, ephemeral: false };
}

export function manifest() {
  const option = (name, description, minLength, maxLength) => ({
    name, description, kind: 'text', required: true, choices: [], autocomplete: false,
    minValue: undefined, maxValue: undefined, minLength, maxLength,
  });
  return {
    name: 'poll',
    version: '0.1.0',
    description: 'Quick polls with buttons',
    commands: [{
      name: 'poll',
      description: 'Start a poll',
      kind: 'chat-input',
      options: [
        option('question', 'What to ask', 1, 200),
        option('options', 'Choices, separated by commas (2-10)', 3, 500),
      ],
      subcommands: [],
      defaultMemberPermissions: undefined,
      dm: false,
      nsfw: false,
    }],
    events: ['privacy.erase'],
    capabilities: ['kv'],
  };
}

export function handleCommand(input) {
  const question = (text(input, 'question') ?? '').trim();
  const options = (text(input, 'options') ?? '').split(',').map((o) => o.trim()).filter((o) => o);
  if (options.length < 2 || options.length > MAX_OPTIONS) {
    return { tag: 'message', val: message(`A poll needs 2 to ${MAX_OPTIONS} options separated by commas (got ${options.length}).`, true) };
  }
  // The interaction id is unique: it names the poll.
  const id = input.context.interactionId;
  const poll = { question, options, owner: input.context.user.id, closed: false };
  save(id, poll);
  return { tag: 'message', val: render(id, poll, options.map(() => 0)) };
}

export function handleComponent(input) {
  const [action, id, choiceText] = input.customId.split(':');
  if (!((action === 'vote' && choiceText !== undefined) || action === 'close')) {
    throw `unknown control \`${input.customId}\``;
  }
  const poll = load(id);
  if (poll === undefined) return { tag: 'message', val: message('This poll is gone.', true) };
  if (poll.closed) return { tag: 'message', val: message('This poll is closed.', true) };
  const user = input.context.user.id;
  if (action === 'close') {
    if (poll.owner !== user) return { tag: 'message', val: message("Only the poll's author can close it.", true) };
    poll.closed = true;
    save(id, poll);
  } else {
    const choice = Number(choiceText);
    if (!Number.isInteger(choice) || choice < 0 || choice >= poll.options.length) throw 'bad option';
    vote(id, choice);
  }
  return { tag: 'update-message', val: render(id, poll, counts(id, poll.options.length)) };
}

export function handleAutocomplete(_input) {
  return { tag: 'choices', val: [] };
}

export function handleModal(input) {
  throw `modal \`${input.customId}\` is not handled`;
}

// `privacy.erase`: the host already deleted the person's own scope; what this plugin keeps
// elsewhere about them is the author of each poll in the server's scope.
export function handleEvent(ev) {
  if (ev.kind !== 'privacy.erase' || ev.guildId === undefined) return;
  const { user } = JSON.parse(ev.payload);
  for (const key of hostCall(() => kv.listKeys('poll:'))) {
    if (key.split(':').length !== 2) continue; // counters, not polls
    const id = key.slice('poll:'.length);
    const poll = load(id);
    if (poll !== undefined && poll.owner === user) {
      poll.owner = null;
      save(id, poll);
    }
  }
}
