// Shared by the end-to-end scripts: headless Chromium (Debian's `chromium`, driven by
// playwright-core, never a downloaded browser), one persistent context per person, and the
// "the follower comes within 150 ms of the host" check. Every wait is for the event itself;
// HANG only stops a run that would otherwise wait forever, so no verdict depends on how fast
// the machine is (how long each sync took is printed, and measured by the load bench).

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

/** Bounds a wait that must end: only a hang reaches it. */
export const HANG = 120_000;

const FLAGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  // The test has no user gesture to unlock audio playback.
  "--autoplay-policy=no-user-gesture-required",
  // Several browsers share two cores: none may be treated as in the background (timers).
  "--disable-background-timer-throttling", "--disable-renderer-backgrounding", "--disable-backgrounding-occluded-windows",
];

/** Content Security Policy refusals seen by any page (inside Discord nothing may escape the mappings). */
export const cspViolations = [];

async function launch(name) {
  const context = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), `kd-e2e-${name}-`)), {
    executablePath: "/usr/bin/chromium",
    args: FLAGS,
    viewport: { width: 900, height: 700 },
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.on("pageerror", (e) => console.log(`[${name}] pageerror: ${e.message}`));
  page.on("console", (m) => {
    if (m.text().includes("Content Security Policy")) cspViolations.push(`[${name}] ${m.text()}`);
  });
  return { context, page };
}

const inRoom = (target) =>
  target.waitForFunction(() => document.querySelector("#status")?.textContent?.startsWith("In the room"), null, {
    timeout: HANG,
  });

/** One person with the Activity open in an ordinary browser tab (dev/demo mode). */
export async function open(url, name) {
  const { context, page } = await launch(name);
  await page.goto(url);
  await inRoom(page);
  return { name, context, page, window: page };
}

/**
 * One person in the Discord client stand-in's window: `page` is the Activity's frame (where
 * the helpers act), `window` the client around it (screenshots, dispatching events).
 */
export async function openInDiscord(url, name) {
  const { context, page } = await launch(name);
  await page.goto(url);
  let frame;
  for (const until = Date.now() + HANG; Date.now() < until && !frame; ) {
    frame = page.frames().find((f) => f.url().includes("/activity/"));
    if (!frame) await new Promise((r) => setTimeout(r, 100));
  }
  if (!frame) throw new Error(`${name}: the Activity frame did not load (${page.frames().map((f) => f.url())})`);
  await inRoom(frame);
  return { name, context, page: frame, window: page };
}

export const pos = (p) => p.page.evaluate(() => window.kd.player.currentTime);
export const isHost = (p) => p.page.evaluate(() => window.kd.follower.isHost);

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

/**
 * After an action the follower must come within 150 ms of the host, with both players where
 * the action put them: `want` is checked on both pages — `true`/`false` for playing /
 * paused, a number for "within 1.5 s of that position", undefined for nothing more. How long
 * it took is printed (the sync's speed is a measurement, not a verdict).
 */
export async function expectInSync(label, host, follower, want) {
  const started = Date.now();
  let last = Infinity;
  const settled = async () =>
    want === undefined ||
    (await Promise.all(
      [host, follower].map((p) =>
        p.page.evaluate(
          (w) => (typeof w === "number" ? Math.abs(window.kd.player.currentTime - w) <= 1.5 : window.kd.player.paused === !w),
          want,
        ),
      ),
    )).every(Boolean);
  while (Date.now() - started < HANG) {
    last = await gap(host, follower);
    if (Math.abs(last) <= 0.15 && (await settled())) {
      console.log(`${label}: in sync after ${Date.now() - started} ms (gap ${(last * 1000).toFixed(0)} ms)`);
      return;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const what = typeof want === "number" ? `at ${want} s` : want ? "playing" : "paused";
  throw new Error(`${label}: follower ${(last * 1000).toFixed(0)} ms off after ${HANG} ms (or not ${what}; follower at ${await pos(follower)} s, host at ${await pos(host)} s)`);
}

/** The room host searches through the host API and picks the first result; both load it. */
export async function pickBySearch(host, others, query) {
  await host.page.fill("#search", query);
  await host.page.click("#search-form button");
  await host.page.waitForSelector("#results button", { timeout: HANG }).catch(async (e) => {
    const said = await host.page.evaluate(() => document.querySelector("#search-status")?.textContent);
    throw new Error(`${host.name}: no search results for "${query}" (the page says: ${said}): ${e.message}`);
  });
  const entry = await host.page.getAttribute("#results button", "data-entry");
  await host.page.click("#results button");
  for (const p of [host, ...others]) {
    await p.page.waitForFunction((e) => window.kd.follower.view().state?.entry_id === e, entry);
  }
  return entry;
}

/** Waits until the player reports a duration (media metadata loaded). */
export async function mediaReady(p) {
  await p.page.waitForFunction(() => (document.querySelector("video:not([hidden])")?.readyState ?? 0) >= 1, null, {
    timeout: HANG,
  });
}

/** The host moves the position slider; both must get there, in sync. */
export async function seekTo(label, host, follower, seconds) {
  await host.page.evaluate((t) => {
    const s = document.querySelector("#seek");
    s.value = String(t);
    s.dispatchEvent(new Event("change"));
  }, seconds);
  await expectInSync(label, host, follower, seconds);
}
