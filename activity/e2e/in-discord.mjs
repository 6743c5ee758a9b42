// End to end as inside Discord: two people in the Discord client stand-in (testkit), which
// frames the Activity at the app's root URL with Discord's query parameters, answers the
// Embedded App SDK's RPC (a real OAuth2 code exchanged by the host), proxies the URL
// mappings and enforces a same-origin content security policy. The host (not in dev mode)
// checks the instance with Discord; Kaltura Player v7 loads through the mappings.
//
//   node e2e/in-discord.mjs <client window URL for person 1> <… for person 2> <artifacts dir>

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { cspViolations, expectInSync, mediaReady, openInDiscord, pickBySearch, seekTo } from "./browser.mjs";

const [urlA, urlB, artifacts] = process.argv.slice(2);
mkdirSync(artifacts, { recursive: true });
const origin = new URL(urlA).origin;
const text = (p, sel) => p.page.evaluate((s) => document.querySelector(s)?.textContent ?? "", sel);

const a = await openInDiscord(urlA, "discord-ann");
if (!new URL(a.page.url()).searchParams.get("frame_id")) throw new Error(`not launched like Discord: ${a.page.url()}`);
// Discord lists Bob in the instance; he has not opened the Activity yet.
await a.page.waitForFunction(() => document.querySelector("#connecting")?.textContent?.includes("Bob"));
console.log(`ann sees: ${await text(a, "#connecting")}`);
const b = await openInDiscord(urlB, "discord-bob");
await a.page.waitForFunction(() => document.querySelector("#connecting")?.textContent === "");
if (!(await a.page.evaluate(() => window.kd.follower.isHost))) throw new Error("the first to join must host");

const entry = await pickBySearch(a, [b], "security");
await mediaReady(a);
await mediaReady(b);
for (const p of [a, b]) {
  const src = await p.page.evaluate(() => document.querySelector("#kaltura-player video")?.src ?? "");
  if (!src.startsWith(`${origin}/kaltura-cdn/`) || !src.includes(`/playManifest/entryId/${entry}/`)) {
    throw new Error(`${p.name}: the media does not come through the URL mapping: ${src}`);
  }
}
console.log(`in discord: kaltura player loaded ${entry} through the mappings`);

await a.page.click("#play");
await expectInSync("in discord play", a, b, true);
await seekTo("in discord seek to 30 s", a, b, 30);
await new Promise((r) => setTimeout(r, 2000));
await expectInSync("in discord playing 2 s", a, b, true);

// The client switches Bob to picture-in-picture.
await b.window.evaluate(() => window.kdClient.dispatch("ACTIVITY_LAYOUT_MODE_UPDATE", { layout_mode: 1 }));
await b.page.waitForFunction(() => getComputedStyle(document.querySelector("#people")).display === "none");
await a.window.screenshot({ path: join(artifacts, "in-discord-host.png") });
await b.window.screenshot({ path: join(artifacts, "in-discord-follower-pip.png") });
if (cspViolations.length) throw new Error(`requests escaped the URL mappings:\n${cspViolations.join("\n")}`);
await a.context.close();
await b.context.close();
console.log("e2e in discord ok");
