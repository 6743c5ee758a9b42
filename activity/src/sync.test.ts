import { describe, expect, it } from "vitest";
import {
  ClockEstimator,
  DEAD_BAND,
  MAX_NUDGE,
  correction,
  fromSample,
  syncStatus,
  targetPosition,
} from "./sync";
import type { PlaybackState } from "./protocol";

describe("clock offset", () => {
  it("assumes the server stamped halfway through the round trip", () => {
    // Client sends at 1000, receives at 1100; server (100 ms ahead) stamped at 1150.
    expect(fromSample({ t0: 1000, t1: 1100, serverTime: 1150 })).toEqual({ offset: 100, rtt: 100 });
  });

  it("trusts the sample with the shortest round trip", () => {
    const c = new ClockEstimator(4);
    // True offset 500 ms; the slow samples are skewed by asymmetric delays.
    c.add({ t0: 0, t1: 300, serverTime: 750 }); // 600 estimate, rtt 300
    c.add({ t0: 1000, t1: 1020, serverTime: 1511 }); // 501, rtt 20
    c.add({ t0: 2000, t1: 2200, serverTime: 2550 }); // 450, rtt 200
    expect(c.estimate()).toEqual({ offset: 501, rtt: 20 });
    expect(c.medianRtt()).toBe(200);
  });

  it("forgets old samples", () => {
    const c = new ClockEstimator(2);
    c.add({ t0: 0, t1: 10, serverTime: 5 });
    c.add({ t0: 100, t1: 200, serverTime: 150 });
    c.add({ t0: 300, t1: 400, serverTime: 1350 });
    expect(c.count).toBe(2);
    expect(c.estimate()!.rtt).toBe(100);
  });
});

describe("target position", () => {
  const playing: PlaybackState = { entry_id: "1_x", playing: true, position: 10, rate: 1, set_at: 1000 };

  it("advances with time and rate while playing, stands still when paused", () => {
    expect(targetPosition(playing, 3000)).toBe(12);
    expect(targetPosition({ ...playing, rate: 2 }, 3000)).toBe(14);
    expect(targetPosition({ ...playing, playing: false }, 99_000)).toBe(10);
    // A state stamped "in the future" (clock jitter) does not run backwards.
    expect(targetPosition(playing, 500)).toBe(10);
  });
});

describe("correction", () => {
  it("does nothing inside the dead band", () => {
    expect(correction(10.03, 10, 1)).toEqual({ kind: "none", rate: 1 });
  });

  it("nudges the rate for small drift: slower when ahead, faster when behind", () => {
    const ahead = correction(10.4, 10, 1);
    const behind = correction(9.6, 10, 1);
    expect(ahead.kind).toBe("nudge");
    expect(ahead.rate).toBeCloseTo(1 - MAX_NUDGE, 5); // 0.4 s × 0.5 = 20 %, capped at 10 %
    expect(behind.rate).toBeCloseTo(1 + MAX_NUDGE, 5);
    expect(correction(10.1, 10, 1).rate).toBeCloseTo(0.95, 5);
    // Relative to the room's rate.
    expect(correction(10.1, 10, 2).rate).toBeCloseTo(1.9, 5);
  });

  it("seeks for large drift, and for any drift on a forced update", () => {
    expect(correction(15, 10, 1)).toEqual({ kind: "seek", position: 10, rate: 1 });
    expect(correction(10.2, 10, 1, true)).toEqual({ kind: "seek", position: 10, rate: 1 });
    expect(correction(10 + DEAD_BAND / 2, 10, 1, true).kind).toBe("none");
  });

  it("converges: a simulated follower 0.8 s behind is within 150 ms in under 10 s", () => {
    let local = 9.2;
    let target = 10;
    let t = 0;
    while (Math.abs(local - target) > 0.15 && t < 20) {
      const c = correction(local, target, 1);
      if (c.kind === "seek") local = c.position;
      local += 0.1 * c.rate;
      target += 0.1;
      t += 0.1;
    }
    expect(t).toBeLessThan(10);
  });
});

describe("sync status", () => {
  it("names the drift", () => {
    expect(syncStatus(0.1)).toBe("in sync");
    expect(syncStatus(-0.5)).toBe("catching up");
    expect(syncStatus(3)).toBe("out of sync");
    expect(syncStatus(null)).toBe("unknown");
  });
});
