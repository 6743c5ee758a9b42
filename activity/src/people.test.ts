import { describe, expect, it } from "vitest";
import { initials, stillConnecting } from "./people";
import type { Participant } from "./protocol";

const member = (id: string, presence: Participant["presence"] = "joined"): Participant => ({
  id,
  name: id,
  avatar: null,
  host: false,
  presence,
  rtt_ms: null,
  quality: "unknown",
  position: null,
  drift: null,
});

describe("stillConnecting", () => {
  it("names the people Discord has in the instance who are not in the room, by their best name", () => {
    const instance = [
      { id: "1", username: "ann" },
      { id: "2", username: "bob", global_name: "Bob B." },
      { id: "3", username: "cy", global_name: "Cy", nickname: "Cyrus" },
    ];
    expect(stillConnecting(instance, [member("1")])).toEqual(["Bob B.", "Cyrus"]);
  });

  it("counts someone whose connection dropped as still connecting", () => {
    expect(stillConnecting([{ id: "1", username: "ann" }], [member("1", "away")])).toEqual(["ann"]);
  });
});

describe("initials", () => {
  it("takes up to two words", () => {
    expect(initials("Guest 1234")).toBe("G1");
    expect(initials("ann marie smith")).toBe("AM");
  });
});
