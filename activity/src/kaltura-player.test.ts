import { describe, expect, it } from "vitest";
import { refreshDelayMs } from "./kaltura-player";

describe("refreshDelayMs", () => {
  const now = 1_764_130_000_000;
  it("renews five minutes before the session ends", () => {
    expect(refreshDelayMs(now / 1000 + 3600, now)).toBe(55 * 60_000);
  });
  it("waits at least 30 s, even for a session about to end or already over", () => {
    expect(refreshDelayMs(now / 1000 + 60, now)).toBe(30_000);
    expect(refreshDelayMs(now / 1000 - 10, now)).toBe(30_000);
  });
});
