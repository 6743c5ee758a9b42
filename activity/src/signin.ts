// Sign-in through the Embedded App SDK: ready → authorize → the host exchanges the code
// (POST /api/v1/activity/token) → authenticate. Outside Discord (no `frame_id`) the SDK's
// mock stands in, and only when the host is in dev/demo mode.

import { DiscordSDK, DiscordSDKMock, attemptRemap, patchUrlMappings } from "@discord/embedded-app-sdk";
import type { KalturaEnv } from "./kaltura-player";
import type { InstancePerson } from "./people";

export interface UrlMapping {
  prefix: string;
  target: string;
}

export interface HostConfig {
  client_id: string;
  dev_mode: boolean;
  player: "kaltura" | "html5";
  kaltura: KalturaEnv | null;
  url_mappings: UrlMapping[];
}

export interface Session {
  sdk: DiscordSDK | DiscordSDKMock;
  config: HostConfig;
  inDiscord: boolean;
  /** Host token for /api/v1 and the sync socket. */
  token: string;
  me: string;
  instance: string;
  channel: string | null;
  guild: string | null;
  /** Absolute URL → the same URL through the Activity's mappings (identity outside Discord). */
  remap: (url: string) => string;
  /** Everyone Discord says is in this instance, now and on every change (Discord only). */
  watchInstance: (cb: (people: InstancePerson[]) => void) => Promise<void>;
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

export interface Layout {
  /** `ACTIVITY_LAYOUT_MODE_UPDATE`: 0 focused, 1 picture-in-picture, 2 grid. */
  mode(mode: number): void;
  /** `ORIENTATION_UPDATE` (mobile): true when the phone is held upright. */
  portrait(upright: boolean): void;
}

export async function signIn(layout: Layout): Promise<Session> {
  const params = new URLSearchParams(location.search);
  const config: HostConfig = await (await fetch("/api/v1/activity/config")).json();
  const inDiscord = params.has("frame_id");
  if (!inDiscord && !config.dev_mode) {
    throw new Error("Open Watch Together from Discord (this host is not in dev mode).");
  }
  const sdk = inDiscord
    ? new DiscordSDK(config.client_id)
    : new DiscordSDKMock(config.client_id, "600000000000000001", params.get("channel") ?? "200000000000000001", null);
  // Inside Discord every request leaves through the Activity's URL mappings (the same
  // prefixes are set in the Developer Portal): Kaltura's CDN and API, Discord's CDN.
  if (inDiscord) patchUrlMappings(config.url_mappings, { patchSrcAttributes: true });
  const remap = inDiscord
    ? (url: string) => attemptRemap({ url: new URL(url), mappings: config.url_mappings }).toString()
    : (url: string) => url;
  await sdk.ready();
  try {
    await sdk.subscribe("ACTIVITY_LAYOUT_MODE_UPDATE", (e: { layout_mode: number }) => layout.mode(e.layout_mode));
    // PORTRAIT is 0 (LANDSCAPE 1, UNHANDLED -1).
    await sdk.subscribe("ORIENTATION_UPDATE", (e: { screen_orientation: number }) =>
      layout.portrait(e.screen_orientation === 0),
    );
  } catch {
    // Older clients do not send layout updates: the full layout and CSS media queries stay.
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
  const watchInstance = async (cb: (people: InstancePerson[]) => void) => {
    if (!inDiscord) return; // the mock knows no one
    const { participants } = await sdk.commands.getInstanceConnectedParticipants();
    cb(participants);
    await sdk.subscribe("ACTIVITY_INSTANCE_PARTICIPANTS_UPDATE", (e: { participants: InstancePerson[] }) =>
      cb(e.participants),
    );
  };
  return {
    sdk,
    config,
    inDiscord,
    token: grant.token,
    me: grant.user.id,
    instance: inDiscord ? sdk.instanceId : (params.get("instance") ?? "demo-instance"),
    channel: sdk.channelId,
    guild: sdk.guildId,
    remap,
    watchInstance,
  };
}
