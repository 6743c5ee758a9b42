// The follower's arithmetic: the server's clock from ping/pong samples, where the playback
// should be, and how to get there. Pure functions, unit-tested (sync.test.ts).

import type { PlaybackState } from "./protocol";

/** One ping/pong: client clock when sent (t0) and received (t1), server clock in between. */
export interface Sample {
  t0: number;
  t1: number;
  serverTime: number;
}

export interface ClockEstimate {
  /** server clock = client clock + offset (ms). */
  offset: number;
  /** Round trip of the sample it came from (ms). */
  rtt: number;
}

/** NTP-style: assume the server stamped halfway through the round trip. */
export function fromSample(s: Sample): ClockEstimate {
  const rtt = Math.max(0, s.t1 - s.t0);
  return { offset: s.serverTime - (s.t0 + s.t1) / 2, rtt };
}

/**
 * Keeps the last `size` samples and trusts the one with the shortest round trip: its
 * halfway assumption is off by at most rtt/2, the least of all (the minimum filter).
 */
export class ClockEstimator {
  private samples: Sample[] = [];
  constructor(private readonly size = 8) {}

  add(s: Sample): void {
    this.samples.push(s);
    if (this.samples.length > this.size) this.samples.shift();
  }

  get count(): number {
    return this.samples.length;
  }

  estimate(): ClockEstimate | null {
    let best: ClockEstimate | null = null;
    for (const s of this.samples) {
      const e = fromSample(s);
      if (best === null || e.rtt < best.rtt) best = e;
    }
    return best;
  }

  /** The median round trip, for the network-quality report. */
  medianRtt(): number | null {
    if (this.samples.length === 0) return null;
    const rtts = this.samples.map((s) => fromSample(s).rtt).sort((a, b) => a - b);
    return rtts[Math.floor(rtts.length / 2)];
  }
}

/** Where the playback should be at server time `serverNow` (seconds). */
export function targetPosition(state: PlaybackState, serverNow: number): number {
  if (!state.playing) return state.position;
  return state.position + (Math.max(0, serverNow - state.set_at) / 1000) * state.rate;
}

/**
 * The thresholds, tuned for a 150 ms goal:
 * - within DEAD_BAND nothing is done (players report `currentTime` coarsely, ~15-250 ms);
 * - up to SEEK_THRESHOLD the rate is nudged (inaudible up to ±10 %): it closes 0.5 s of
 *   drift in ~5 s without a visible jump;
 * - beyond it (or on a forced update: seek, load, "sync everyone") the player seeks.
 */
export const DEAD_BAND = 0.05;
export const SEEK_THRESHOLD = 1.0;
export const MAX_NUDGE = 0.1;
/** Rate change per second of drift. */
export const GAIN = 0.5;

export type Correction =
  | { kind: "none"; rate: number }
  | { kind: "nudge"; rate: number }
  | { kind: "seek"; position: number; rate: number };

/**
 * What a follower should do. `local` is its player's position, `target` where it should
 * be (seconds), `rate` the room's rate.
 */
export function correction(local: number, target: number, rate: number, force = false): Correction {
  const drift = local - target; // > 0: ahead
  if (force ? Math.abs(drift) > DEAD_BAND : Math.abs(drift) > SEEK_THRESHOLD) {
    return { kind: "seek", position: target, rate };
  }
  if (Math.abs(drift) <= DEAD_BAND) return { kind: "none", rate };
  const nudge = Math.max(-MAX_NUDGE, Math.min(MAX_NUDGE, drift * GAIN));
  return { kind: "nudge", rate: rate * (1 - nudge) };
}

/** "in sync" / "catching up" / "out of sync", from a participant's drift (seconds). */
export function syncStatus(drift: number | null): "in sync" | "catching up" | "out of sync" | "unknown" {
  if (drift === null || !Number.isFinite(drift)) return "unknown";
  const d = Math.abs(drift);
  if (d <= 0.15) return "in sync";
  if (d <= SEEK_THRESHOLD) return "catching up";
  return "out of sync";
}
