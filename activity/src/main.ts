// Watch Together: sign in, join the instance's sync room, follow the room's playback, and
// drive it as host.

import { Follower } from "./follower";
import { KalturaV7Player } from "./kaltura-player";
import type { InstancePerson } from "./people";
import { Html5Player, type Player } from "./player";
import { signIn, type Session } from "./signin";
import { $, clock, render, setStatus, showResults, showTitle, type Actions } from "./ui";
import { HostApi, looksLikeEntryId } from "./videos";

function choosePlayer(session: Session, api: HostApi): Player {
  const asked = new URLSearchParams(location.search).get("player");
  const k = session.config.kaltura;
  // Kaltura playback when the host has it; in dev/demo only when asked (`?player=kaltura`).
  if (k && (session.config.player === "kaltura" || (session.config.dev_mode && asked === "kaltura"))) {
    $<HTMLVideoElement>("video").hidden = true;
    $<HTMLDivElement>("kaltura-player").hidden = false;
    return new KalturaV7Player("kaltura-player", k, (entry) => api.play(entry), session.remap);
  }
  return new Html5Player($<HTMLVideoElement>("video"), (entry) => `/activity/media/sample.wav?entry=${encodeURIComponent(entry)}`);
}

async function main(): Promise<void> {
  let session: Session;
  try {
    session = await signIn({
      // Focused (0), picture-in-picture (1) or grid (2): the small layouts show the player only.
      mode: (mode) => {
        document.body.classList.toggle("pip", mode === 1);
        document.body.classList.toggle("grid", mode === 2);
      },
      portrait: (upright) => document.body.classList.toggle("portrait", upright),
    });
  } catch (e) {
    setStatus(String((e as Error).message ?? e));
    return;
  }
  const api = new HostApi(session.token, session.guild);
  const player = choosePlayer(session, api);
  const proto = location.protocol === "https:" ? "wss" : "ws";
  // The token rides in Sec-WebSocket-Protocol (the follower sets it), never in the URL.
  const q = new URLSearchParams({ instance_id: session.instance });
  if (session.channel) q.set("channel_id", session.channel);
  let instance: InstancePerson[] = [];
  let titled: string | null = null;
  const onChange = () => {
    const v = follower.view();
    render(v, session.me, instance, actions);
    const entry = v.state?.entry_id ?? null;
    if (entry && entry !== titled) {
      titled = entry;
      showTitle(entry);
      api.video(entry).then(
        (video) => titled === entry && showTitle(video.name),
        () => {}, // not in Kaltura (the demo media plays any id): the id stays
      );
    }
  };
  const actions: Actions = {
    transfer: (to) => follower.send({ type: "transfer", to }),
    pick: (video) => follower.send({ type: "load", entry_id: video.id }),
  };
  const follower: Follower = new Follower(
    player,
    session.me,
    `${proto}://${location.host}/api/v1/activity/sync?${q}`,
    session.token,
    setStatus,
    onChange,
  );
  player.onBuffering((b) => follower.send({ type: "report", presence: b ? "buffering" : "joined" }));
  // Idle while the page is in the background (another tab, a minimized window).
  document.addEventListener("visibilitychange", () =>
    follower.send({ type: "report", presence: document.hidden ? "idle" : "joined" }),
  );
  follower.connect();
  session
    .watchInstance((people) => {
      instance = people;
      onChange();
    })
    .catch(() => {
      // Without the instance list the room's own participants still show.
    });
  setInterval(() => follower.tick(), 250);
  setInterval(() => follower.report(), 1000);
  setInterval(() => follower.ping(), 2000);
  setInterval(() => {
    $<HTMLDivElement>("clock").textContent = clock(player.currentTime);
    const seek = $<HTMLInputElement>("seek");
    // The slider spans the media once its length is known.
    if (Number.isFinite(player.duration) && player.duration > 0) seek.max = String(player.duration);
    if (document.activeElement !== seek) seek.value = String(player.currentTime);
  }, 100);
  // For the end-to-end tests (and curious people): the room, the player and the SDK.
  (window as unknown as { kd: unknown }).kd = { follower, player, sdk: session.sdk };

  const position = () => player.currentTime;
  $<HTMLButtonElement>("play").onclick = () => {
    const playing = follower.view().state?.playing;
    follower.send(playing ? { type: "pause", position: position() } : { type: "play", position: position() });
  };
  $<HTMLInputElement>("seek").onchange = (e) =>
    follower.send({ type: "seek", position: Number((e.target as HTMLInputElement).value) });
  $<HTMLSelectElement>("rate").onchange = (e) =>
    follower.send({ type: "rate", rate: Number((e.target as HTMLSelectElement).value) });
  $<HTMLButtonElement>("sync-all").onclick = () => follower.send({ type: "sync_all" });
  $<HTMLFormElement>("search-form").onsubmit = async (e) => {
    e.preventDefault();
    const text = $<HTMLInputElement>("search").value.trim();
    const hint = $<HTMLParagraphElement>("search-status");
    // A pasted entry id plays directly.
    if (looksLikeEntryId(text)) {
      follower.send({ type: "load", entry_id: text });
      hint.textContent = "";
      return;
    }
    hint.textContent = "Searching…";
    try {
      const videos = await api.search(text);
      showResults(videos, actions);
      hint.textContent = videos.length ? `${videos.length} found` : "Nothing found";
    } catch (err) {
      showResults([], actions);
      hint.textContent = (err as Error).message;
    }
  };
  document.addEventListener("keydown", (e) => {
    if (!follower.isHost || e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement) return;
    if (e.key === " ") {
      e.preventDefault();
      $<HTMLButtonElement>("play").click();
    } else if (e.key === "ArrowRight" || e.key === "ArrowLeft") {
      follower.send({ type: "seek", position: Math.max(0, position() + (e.key === "ArrowRight" ? 5 : -5)) });
    }
  });
  document.addEventListener("click", () => follower.tick(), { once: true });
}

void main();
