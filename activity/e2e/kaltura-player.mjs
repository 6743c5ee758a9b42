// End to end with Kaltura Player v7 (the Kaltura stand-in's script and media): two people
// open the Activity with `?player=kaltura`; the host picks a video by search; each page gets
// its own scoped session from the host, loads the entry through the player, and the follower
// stays within 150 ms of the host through play and seek.
//
//   node e2e/kaltura-player.mjs <activity URL with player=kaltura> <artifacts dir>

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { expectInSync, mediaReady, open, pickBySearch, seekTo } from "./browser.mjs";

const [url, artifacts] = process.argv.slice(2);
mkdirSync(artifacts, { recursive: true });

const a = await open(url, "kaltura-host");
const b = await open(url, "kaltura-follower");
const entry = await pickBySearch(a, [b], "security");
await mediaReady(a);
await mediaReady(b);
for (const p of [a, b]) {
  // The player's own element, playing the entry's playManifest with a session.
  const src = await p.page.evaluate(() => document.querySelector("#kaltura-player video")?.src ?? "");
  if (!src.includes(`/playManifest/entryId/${entry}/`) || !src.includes("ks=")) {
    throw new Error(`${p.name}: the Kaltura player is not playing ${entry}: ${src}`);
  }
}
console.log(`kaltura player loaded ${entry} on both pages`);

await a.page.click("#play");
await expectInSync("kaltura play", a, b, true);
await seekTo("kaltura seek to 20 s", a, b, 20);
await a.page.screenshot({ path: join(artifacts, "kaltura-host.png") });
await a.context.close();
await b.context.close();
console.log("e2e kaltura ok");
