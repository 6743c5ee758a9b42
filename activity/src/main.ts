// Watch Together: sign in through the Embedded App SDK (or its mock outside Discord, in
// dev/demo), join the instance's sync room, follow the room's playback, drive it as host.

import { DiscordSDK, DiscordSDKMock } from "@discord/embedded-app-sdk";
import { Html5Player, type Player } from "./player";
import type { ClientMessage, Participant, PlaybackState, ServerMessage } from "./protocol";
import { CLOSE } from "./protocol";
import { ClockEstimator, correction, syncStatus, targetPosition } from "./sync";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const statusEl = $<HTMLParagraphElement>("status");
const setStatus = (text: string) => (statusEl.textContent = text);

interface HostConfig {
  client_id: string;
  dev_mode: boolean;
}

/** A stable mock identity per browser tab (dev/demo only). */
function mockUser(): { id: string; username: string } {
  let id = sessionStorage.getItem("kd-mock-user");
  if (!id) {
    id = "7" + Array.from({ length: 17 }, () => Math.floor(Math.random() * 10)).join("");
    sessionStorage.setItem("kd-mock-user", id);
  }
  return { id, username: `Guest ${id.slice(-4)}` };
}

async function signIn(): Promise<{ token: string; me: string; instance: string; channel: string | null }> {
  const params = new URLSearchParams(location.search);
  const config: HostConfig = await (await fetch("/api/v1/activity/config")).json();
  const inDiscord = params.has("frame_id");
  if (!inDiscord && !config.dev_mode) {
    throw new Error("Open Watch Together from Discord (this host is not in dev mode).");
  }
  const sdk = inDiscord
    ? new DiscordSDK(config.client_id)
    : new DiscordSDKMock(config.client_id, "600000000000000001", params.get("channel") ?? "200000000000000001", null);
  await sdk.ready();
  // Focused, picture-in-picture or grid: the small layouts show the player only.
  try {
    await sdk.subscribe("ACTIVITY_LAYOUT_MODE_UPDATE", (e: { layout_mode: number }) => {
      document.body.classList.toggle("pip", e.layout_mode === 1);
      document.body.classList.toggle("grid", e.layout_mode === 2);
    });
  } catch {
    // Older clients do not send layout updates: the full layout stays.
  }
  const { code } = await sdk.commands.authorize({
    client_id: config.client_id,
    response_type: "code",
    state: "",
    prompt: "none",
    scope: ["identify", "guilds"],
  });
  const body = inDiscord ? { code } : { code, mock_user: mockUser() };
  const res = await fetch("/api/v1/activity/token", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const grant = await res.json();
  if (!res.ok) throw new Error(grant?.error?.message ?? "sign-in failed");
  await sdk.commands.authenticate({ access_token: grant.access_token });
  const instance = inDiscord ? sdk.instanceId : (params.get("instance") ?? "demo-instance");
  return { token: grant.token, me: grant.user.id, instance, channel: sdk.channelId };
}

class Follower {
  private clock = new ClockEstimator(8);
  private state: PlaybackState | null = null;
  private force = false;
  private host: string | null = null;
  private participants: Participant[] = [];
  private ws!: WebSocket;
  private pingId = 0;
  private retries = 0;

  constructor(
    private readonly player: Player,
    private readonly me: string,
    private readonly url: string,
  ) {}

  get isHost(): boolean {
    return this.host === this.me;
  }

  serverNow(): number {
    return Date.now() + (this.clock.estimate()?.offset ?? 0);
  }

  connect(): void {
    this.ws = new WebSocket(this.url);
    this.ws.onopen = () => {
      this.retries = 0;
      for (let i = 0; i < 5; i++) setTimeout(() => this.ping(), i * 150);
    };
    this.ws.onmessage = (e) => this.onMessage(JSON.parse(e.data) as ServerMessage);
    this.ws.onclose = (e) => {
      if (e.code === CLOSE.UNAUTHORIZED || e.code === CLOSE.NOT_IN_INSTANCE || e.code === CLOSE.REPLACED) {
        setStatus(`Disconnected: ${e.reason || e.code}`);
        return;
      }
      // Dropped: resume (the seat is kept for a few seconds).
      this.retries += 1;
      setStatus("Reconnecting…");
      setTimeout(() => this.connect(), Math.min(5000, 250 * 2 ** this.retries));
    };
  }

  send(msg: ClientMessage): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  ping(): void {
    this.send({ type: "ping", id: ++this.pingId, t0: Date.now() });
  }

  private onMessage(m: ServerMessage): void {
    switch (m.type) {
      case "welcome":
        this.host = m.host;
        this.participants = m.participants;
        this.apply(m.state, true);
        setStatus(`In the room (${m.instance_id})`);
        break;
      case "state":
        this.apply(m.state, m.force);
        break;
      case "participants":
        this.host = m.host;
        this.participants = m.participants;
        break;
      case "pong":
        this.clock.add({ t0: m.t0, t1: Date.now(), serverTime: m.server_time });
        break;
      case "error":
        setStatus(m.message);
        break;
    }
    render(this);
  }

  private apply(state: PlaybackState, force: boolean): void {
    const entry = state.entry_id;
    this.state = state;
    this.force = this.force || force;
    if (entry) void this.player.load(entry).then(() => this.tick());
  }

  /** Every 250 ms: follow the room's state (the host too: the server's stamp is the truth). */
  tick(): void {
    const s = this.state;
    if (!s || !s.entry_id) return;
    const target = targetPosition(s, this.serverNow());
    if (!s.playing) {
      if (!this.player.paused) this.player.pause();
      if (Math.abs(this.player.currentTime - target) > 0.05) this.player.currentTime = target;
      this.force = false;
      return;
    }
    const c = correction(this.player.currentTime, target, s.rate, this.force);
    this.force = false;
    if (c.kind === "seek") this.player.currentTime = c.position;
    this.player.playbackRate = c.rate;
    if (this.player.paused) {
      this.player.play().catch(() => setStatus("Click anywhere to allow playback"));
    }
  }

  report(): void {
    this.send({
      type: "report",
      rtt_ms: Math.round(this.clock.medianRtt() ?? 0),
      position: Math.max(0, this.player.currentTime),
    });
  }

  view() {
    return { host: this.host, participants: this.participants, state: this.state, serverNow: this.serverNow() };
  }
}

function initials(name: string): string {
  return name.split(/\s+/).map((w) => w[0] ?? "").join("").slice(0, 2).toUpperCase();
}

function fmt(t: number): string {
  const m = Math.floor(t / 60);
  return `${m}:${(t - m * 60).toFixed(1).padStart(4, "0")}`;
}

function render(f: Follower): void {
  const v = f.view();
  const list = $<HTMLUListElement>("participants");
  list.replaceChildren(
    ...v.participants.map((p) => {
      const li = document.createElement("li");
      const status = p.presence === "away" ? "away" : syncStatus(p.drift);
      li.innerHTML = `<span class="avatar" aria-hidden="true"></span><span class="name"></span>`;
      (li.querySelector(".avatar") as HTMLElement).textContent = initials(p.name);
      (li.querySelector(".name") as HTMLElement).textContent = p.name;
      if (p.host) li.insertAdjacentHTML("beforeend", `<span class="badge">host</span>`);
      const sync = document.createElement("span");
      sync.className = `sync ${status.replace(/ /g, "-")}`;
      sync.textContent = `${status} · ${p.quality}`;
      li.append(sync);
      li.setAttribute("aria-label", `${p.name}${p.host ? ", host" : ""}, ${status}, network ${p.quality}`);
      return li;
    }),
  );
  const controls = $<HTMLElement>("controls");
  controls.setAttribute("aria-disabled", String(!f.isHost));
  controls.querySelectorAll<HTMLButtonElement | HTMLInputElement | HTMLSelectElement>("button, input, select").forEach(
    (el) => (el.disabled = !f.isHost),
  );
  const play = $<HTMLButtonElement>("play");
  const playing = v.state?.playing ?? false;
  play.textContent = playing ? "⏸" : "▶";
  play.setAttribute("aria-label", playing ? "Pause" : "Play");
}

async function main(): Promise<void> {
  let session;
  try {
    session = await signIn();
  } catch (e) {
    setStatus(String((e as Error).message ?? e));
    return;
  }
  const video = $<HTMLVideoElement>("video");
  const player = new Html5Player(video, (entry) => `/activity/media/sample.wav?entry=${encodeURIComponent(entry)}`);
  const proto = location.protocol === "https:" ? "wss" : "ws";
  const q = new URLSearchParams({ instance_id: session.instance, token: session.token });
  if (session.channel) q.set("channel_id", session.channel);
  const follower = new Follower(player, session.me, `${proto}://${location.host}/api/v1/activity/sync?${q}`);
  player.onBuffering((b) => follower.send({ type: "report", presence: b ? "buffering" : "joined" }));
  follower.connect();
  setInterval(() => follower.tick(), 250);
  setInterval(() => follower.report(), 1000);
  setInterval(() => follower.ping(), 2000);
  setInterval(() => {
    $<HTMLDivElement>("clock").textContent = fmt(player.currentTime);
    const seek = $<HTMLInputElement>("seek");
    if (document.activeElement !== seek) seek.value = String(player.currentTime);
  }, 100);
  (window as unknown as { kd: unknown }).kd = { follower, player };

  const position = () => player.currentTime;
  $<HTMLButtonElement>("play").onclick = () => {
    const playing = follower.view().state?.playing;
    follower.send(playing ? { type: "pause", position: position() } : { type: "play", position: position() });
  };
  $<HTMLInputElement>("seek").onchange = (e) =>
    follower.send({ type: "seek", position: Number((e.target as HTMLInputElement).value) });
  $<HTMLSelectElement>("rate").onchange = (e) =>
    follower.send({ type: "rate", rate: Number((e.target as HTMLSelectElement).value) });
  $<HTMLButtonElement>("sync-all").onclick = () => follower.send({ type: "sync_all" });
  $<HTMLFormElement>("load-form").onsubmit = (e) => {
    e.preventDefault();
    const entry = $<HTMLInputElement>("entry").value.trim();
    if (entry) follower.send({ type: "load", entry_id: entry });
  };
  document.addEventListener("keydown", (e) => {
    if (!follower.isHost || e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement) return;
    if (e.key === " ") {
      e.preventDefault();
      $<HTMLButtonElement>("play").click();
    } else if (e.key === "ArrowRight" || e.key === "ArrowLeft") {
      follower.send({ type: "seek", position: Math.max(0, position() + (e.key === "ArrowRight" ? 5 : -5)) });
    }
  });
  document.addEventListener("click", () => follower.tick(), { once: true });
}

void main();
