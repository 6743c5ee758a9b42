// The sync protocol, version 1: mirrors host/src/activity/protocol.rs.

export const VERSION = 1;
/** The sync socket's subprotocol; the host token is offered after it (never in the URL). */
export const SUBPROTOCOL = "kd-sync";

/** Close codes the server uses (4000-4999 are the application's). */
export const CLOSE = {
  UNAUTHORIZED: 4001,
  NOT_IN_INSTANCE: 4003,
  POLICY: 4008,
  TOO_BIG: 4009,
  TIMEOUT: 4010,
  REPLACED: 4011,
  /** Another server instance owns the room: reconnect. */
  ELSEWHERE: 4012,
  /** The server is restarting (a rolling update): reconnect; the room goes on elsewhere. */
  RESTARTING: 4013,
} as const;

/** `position` (seconds) was true at `set_at` (server ms); while playing it advances at `rate`. */
export interface PlaybackState {
  entry_id: string | null;
  playing: boolean;
  position: number;
  rate: number;
  set_at: number;
}

export type Presence = "joined" | "buffering" | "idle" | "away";
export type Quality = "good" | "fair" | "poor" | "unknown";

export interface Participant {
  id: string;
  name: string;
  avatar: string | null;
  host: boolean;
  presence: Presence;
  rtt_ms: number | null;
  quality: Quality;
  position: number | null;
  /** Seconds from the room's position when reported (+ ahead). */
  drift: number | null;
}

export type ClientMessage =
  | { type: "ping"; id: number; t0: number }
  | { type: "report"; rtt_ms?: number; position?: number; presence?: Exclude<Presence, "away"> }
  | { type: "play"; position: number }
  | { type: "pause"; position: number }
  | { type: "seek"; position: number }
  | { type: "rate"; rate: number }
  | { type: "load"; entry_id: string }
  | { type: "sync_all" }
  | { type: "transfer"; to: string };

export type ServerMessage =
  | {
      type: "welcome";
      v: number;
      you: string;
      instance_id: string;
      host: string | null;
      state: PlaybackState;
      participants: Participant[];
      server_time: number;
    }
  | { type: "state"; state: PlaybackState; by: string | null; seq: number; force: boolean }
  | { type: "participants"; host: string | null; participants: Participant[] }
  | { type: "pong"; id: number; t0: number; server_time: number }
  | { type: "error"; code: string; message: string };
