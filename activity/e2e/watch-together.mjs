// End to end in headless Chromium (Debian's `chromium`, driven by playwright-core): two
// people join one instance; the host loads, plays, seeks and pauses; each time the follower
// must be within 150 ms of the host within 1 s; the host leaves and the follower becomes
// host. Screenshots go to the artifacts folder.
//
//   node e2e/watch-together.mjs <activity URL> <artifacts dir>

import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [url, artifacts] = process.argv.slice(2);
mkdirSync(artifacts, { recursive: true });
const FLAGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  // The test has no user gesture to unlock audio playback.
  "--autoplay-policy=no-user-gesture-required",
];

async function open(name) {
  const context = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), `kd-e2e-${name}-`)), {
    executablePath: "/usr/bin/chromium",
    args: FLAGS,
    viewport: { width: 900, height: 700 },
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.on("pageerror", (e) => console.log(`[${name}] pageerror: ${e.message}`));
  await page.goto(url);
  await page.waitForFunction(() => document.querySelector("#status")?.textContent?.startsWith("In the room"), null, { timeout: 15000 });
  return { name, context, page };
}

const pos = (p) => p.page.evaluate(() => window.kd.player.currentTime);
const isHost = (p) => p.page.evaluate(() => window.kd.follower.isHost);

/** Follower minus host, with the host's position carried to the moment the follower was read. */
async function gap(host, follower) {
  const t0 = Date.now();
  const h = await pos(host);
  const t1 = Date.now();
  const f = await pos(follower);
  const playing = await host.page.evaluate(() => window.kd.follower.view().state?.playing ?? false);
  const rate = await host.page.evaluate(() => window.kd.follower.view().state?.rate ?? 1);
  return f - (h + (playing ? ((t1 - t0) / 1000) * rate : 0));
}

/** Within 1 s of an action the follower must be within 150 ms of the host. */
async function expectInSync(label, host, follower) {
  const started = Date.now();
  let last = Infinity;
  while (Date.now() - started < 1000) {
    last = await gap(host, follower);
    if (Math.abs(last) <= 0.15) {
      console.log(`${label}: in sync after ${Date.now() - started} ms (gap ${(last * 1000).toFixed(0)} ms)`);
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${label}: follower ${(last * 1000).toFixed(0)} ms off after 1 s`);
}

const a = await open("host");
const b = await open("follower");
if (!(await isHost(a)) || (await isHost(b))) throw new Error("the first to join must host");

await a.page.fill("#entry", "1_e2etest1");
await a.page.click("#load-form button");
await a.page.waitForFunction(() => window.kd.follower.view().state?.entry_id === "1_e2etest1");
await b.page.waitForFunction(() => window.kd.follower.view().state?.entry_id === "1_e2etest1");
await new Promise((r) => setTimeout(r, 500)); // media metadata

await a.page.click("#play");
await expectInSync("play", a, b);
await new Promise((r) => setTimeout(r, 1500));
await expectInSync("playing 1.5 s", a, b);

await a.page.evaluate(() => {
  const s = document.querySelector("#seek");
  s.value = "42";
  s.dispatchEvent(new Event("change"));
});
await expectInSync("seek to 42 s", a, b);
if (Math.abs((await pos(b)) - 42) > 1.5) throw new Error("the follower did not seek");

await a.page.click("#play"); // pause
await expectInSync("pause", a, b);
const paused = await b.page.evaluate(() => window.kd.player.paused);
if (!paused) throw new Error("the follower is still playing");

await a.page.screenshot({ path: join(artifacts, "host.png") });
await b.page.screenshot({ path: join(artifacts, "follower.png") });

// The host leaves: the follower hosts within the grace period.
await a.context.close();
const started = Date.now();
while (!(await isHost(b))) {
  if (Date.now() - started > 8000) throw new Error("the follower did not become host");
  await new Promise((r) => setTimeout(r, 100));
}
console.log(`host left: the follower hosts after ${Date.now() - started} ms`);
await b.page.screenshot({ path: join(artifacts, "follower-now-host.png") });
await b.context.close();
console.log("e2e ok");
