// One person's end of the sync room: the WebSocket (resumed after a drop), the clock
// estimate, and the loop that keeps the local player on the room's state.

import type { Player } from "./player";
import type { ClientMessage, Participant, PlaybackState, ServerMessage } from "./protocol";
import { CLOSE, SUBPROTOCOL } from "./protocol";
import { ClockEstimator, correction, targetPosition } from "./sync";

export interface RoomView {
  host: string | null;
  participants: Participant[];
  state: PlaybackState | null;
  serverNow: number;
}

export class Follower {
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
    /** The host token: sent as the second subprotocol value (proxies log URLs, not this). */
    private readonly token: string,
    private readonly status: (text: string) => void,
    private readonly changed: () => void,
  ) {}

  get isHost(): boolean {
    return this.host === this.me;
  }

  serverNow(): number {
    return Date.now() + (this.clock.estimate()?.offset ?? 0);
  }

  connect(): void {
    this.ws = new WebSocket(this.url, [SUBPROTOCOL, this.token]);
    this.ws.onopen = () => {
      this.retries = 0;
      for (let i = 0; i < 5; i++) setTimeout(() => this.ping(), i * 150);
    };
    this.ws.onmessage = (e) => this.onMessage(JSON.parse(e.data) as ServerMessage);
    this.ws.onclose = (e) => {
      if (e.code === CLOSE.UNAUTHORIZED || e.code === CLOSE.NOT_IN_INSTANCE || e.code === CLOSE.REPLACED) {
        this.status(`Disconnected: ${e.reason || e.code}`);
        return;
      }
      // Dropped: resume (the seat is kept for a few seconds).
      this.retries += 1;
      this.status("Reconnecting…");
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
        this.status(`In the room (${m.instance_id})`);
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
        this.status(m.message);
        break;
    }
    this.changed();
  }

  private apply(state: PlaybackState, force: boolean): void {
    const entry = state.entry_id;
    this.state = state;
    this.force = this.force || force;
    if (entry) {
      this.player
        .load(entry)
        .then(() => this.tick())
        .catch((e: Error) => this.status(`Cannot play ${entry}: ${e.message}`));
    }
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
      this.player.play().catch(() => this.status("Click anywhere to allow playback"));
    }
  }

  report(): void {
    this.send({
      type: "report",
      rtt_ms: Math.round(this.clock.medianRtt() ?? 0),
      position: Math.max(0, this.player.currentTime),
    });
  }

  view(): RoomView {
    return { host: this.host, participants: this.participants, state: this.state, serverNow: this.serverNow() };
  }
}
