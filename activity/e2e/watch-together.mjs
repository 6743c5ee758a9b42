// End to end in headless Chromium: two people join one instance; the host picks a video by
// search, plays, seeks and pauses; each time the follower must come within 150 ms of the host
// (how long it took is printed); host is handed over and back; the host leaves and the
// follower becomes host.
// Screenshots go to the artifacts folder.
//
//   node e2e/watch-together.mjs <activity URL> <artifacts dir>

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { HANG, expectInSync, isHost, mediaReady, open, pickBySearch, pos, seekTo } from "./browser.mjs";

const [url, artifacts] = process.argv.slice(2);
mkdirSync(artifacts, { recursive: true });

const a = await open(url, "host");
const b = await open(url, "follower");
if (!(await isHost(a)) || (await isHost(b))) throw new Error("the first to join must host");

const entry = await pickBySearch(a, [b], "rust");
console.log(`picked ${entry} by search`);
await mediaReady(a);
await mediaReady(b);

await a.page.click("#play");
await expectInSync("play", a, b, true);
await new Promise((r) => setTimeout(r, 1500));
await expectInSync("playing 1.5 s", a, b);

await seekTo("seek to 42 s", a, b, 42);

await a.page.click("#play"); // pause
await expectInSync("pause", a, b, false);

console.log(`paused at host ${(await pos(a)).toFixed(2)} s, follower ${(await pos(b)).toFixed(2)} s`);
await a.page.screenshot({ path: join(artifacts, "host.png") });
await b.page.screenshot({ path: join(artifacts, "follower.png") });
// Discord's layout modes (sent through the SDK): picture-in-picture shows the player only.
const shown = (p, sel) => p.page.evaluate((s) => getComputedStyle(document.querySelector(s)).display !== "none", sel);
await b.page.evaluate(() => window.kd.sdk.emitEvent("ACTIVITY_LAYOUT_MODE_UPDATE", { layout_mode: 1 }));
if ((await shown(b, "#people")) || !(await shown(b, "#stage"))) throw new Error("picture-in-picture shows more than the player");
await b.page.screenshot({ path: join(artifacts, "follower-pip.png") });
await b.page.evaluate(() => window.kd.sdk.emitEvent("ACTIVITY_LAYOUT_MODE_UPDATE", { layout_mode: 0 }));
if (!(await shown(b, "#people"))) throw new Error("focused mode hides the participants");
await b.page.evaluate(() => window.kd.sdk.emitEvent("ORIENTATION_UPDATE", { screen_orientation: 0 }));
await b.page.setViewportSize({ width: 360, height: 740 }); // a phone held upright
await b.page.screenshot({ path: join(artifacts, "follower-360.png"), fullPage: true });

// Host handed over and back with the participants' "Make host" buttons.
await a.page.click("#participants .transfer");
await b.page.waitForFunction(() => window.kd.follower.isHost);
await b.page.click("#participants .transfer");
await a.page.waitForFunction(() => window.kd.follower.isHost);
console.log("host transferred and back");

// The host leaves: the follower hosts within the grace period.
await a.context.close();
const started = Date.now();
while (!(await isHost(b))) {
  if (Date.now() - started > HANG) throw new Error("the follower did not become host");
  await new Promise((r) => setTimeout(r, 100));
}
console.log(`host left: the follower hosts after ${Date.now() - started} ms`);
await b.page.screenshot({ path: join(artifacts, "follower-now-host.png") });
await b.context.close();
console.log("e2e ok");
