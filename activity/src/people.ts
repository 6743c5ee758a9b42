// Who is where: the room's participants (connected to the sync server) against the people
// Discord says are in the Activity instance, so the page can show who is still connecting.

import type { Participant } from "./protocol";

/** A participant as the SDK reports it (`getInstanceConnectedParticipants`). */
export interface InstancePerson {
  id: string;
  username: string;
  global_name?: string | null;
  nickname?: string | null;
}

/** People in the instance who have not reached the room yet, by display name. */
export function stillConnecting(instance: InstancePerson[], room: Participant[]): string[] {
  const inRoom = new Set(room.filter((p) => p.presence !== "away").map((p) => p.id));
  return instance.filter((p) => !inRoom.has(p.id)).map((p) => p.nickname || p.global_name || p.username);
}

export function initials(name: string): string {
  return name
    .split(/\s+/)
    .map((w) => w[0] ?? "")
    .join("")
    .slice(0, 2)
    .toUpperCase();
}
