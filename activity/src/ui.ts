// The page: participants (avatar, host badge, sync status, "make host"), host controls and
// the video picker. Rendering only; what the buttons do is wired in main.ts.

import type { RoomView } from "./follower";
import { initials, stillConnecting, type InstancePerson } from "./people";
import { syncStatus } from "./sync";
import { duration, type Video } from "./videos";

const PLAY_ICON = `<svg viewBox="0 0 10 10" aria-hidden="true"><path d="M2 1l7 4-7 4z"/></svg>`;
const PAUSE_ICON = `<svg viewBox="0 0 10 10" aria-hidden="true"><path d="M2 1h2v8H2zM6 1h2v8H6z"/></svg>`;

export const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

export function setStatus(text: string): void {
  $<HTMLParagraphElement>("status").textContent = text;
}

export function clock(t: number): string {
  const m = Math.floor(t / 60);
  return `${m}:${(t - m * 60).toFixed(1).padStart(4, "0")}`;
}

function avatar(name: string, url: string | null): HTMLElement {
  const fallback = document.createElement("span");
  fallback.className = "avatar";
  fallback.setAttribute("aria-hidden", "true");
  fallback.textContent = initials(name);
  if (!url) return fallback;
  const img = document.createElement("img");
  img.className = "avatar";
  img.alt = "";
  img.src = url;
  img.onerror = () => img.replaceWith(fallback);
  return img;
}

export interface Actions {
  transfer(to: string): void;
  pick(video: Video): void;
}

export function render(v: RoomView, me: string, instance: InstancePerson[], actions: Actions): void {
  const isHost = v.host === me;
  $<HTMLUListElement>("participants").replaceChildren(
    ...v.participants.map((p) => {
      const li = document.createElement("li");
      const status = p.presence === "joined" ? syncStatus(p.drift) : p.presence;
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = p.id === me ? `${p.name} (you)` : p.name;
      li.append(avatar(p.name, p.avatar), name);
      if (p.host) li.insertAdjacentHTML("beforeend", `<span class="badge">host</span>`);
      const sync = document.createElement("span");
      sync.className = `sync ${status.replace(/ /g, "-")}`;
      sync.textContent = `${status} · ${p.quality}`;
      li.append(sync);
      if (isHost && p.id !== me && p.presence !== "away") {
        const b = document.createElement("button");
        b.type = "button";
        b.className = "transfer";
        b.textContent = "Make host";
        b.setAttribute("aria-label", `Make ${p.name} the host`);
        b.onclick = () => actions.transfer(p.id);
        li.append(b);
      }
      li.setAttribute("aria-label", `${p.name}${p.host ? ", host" : ""}, ${status}, network ${p.quality}`);
      return li;
    }),
  );
  const waiting = stillConnecting(instance, v.participants);
  $<HTMLParagraphElement>("connecting").textContent = waiting.length ? `Connecting: ${waiting.join(", ")}` : "";

  const controls = $<HTMLElement>("controls");
  controls.setAttribute("aria-disabled", String(!isHost));
  document
    .querySelectorAll<HTMLButtonElement | HTMLInputElement | HTMLSelectElement>(
      "#controls button, #controls input, #controls select, #picker button, #picker input",
    )
    .forEach((el) => (el.disabled = !isHost));
  $<HTMLElement>("picker").hidden = !isHost;
  const play = $<HTMLButtonElement>("play");
  const playing = v.state?.playing ?? false;
  // Icons drawn as SVG: not every system font has the media symbols.
  play.innerHTML = playing ? PAUSE_ICON : PLAY_ICON;
  play.setAttribute("aria-label", playing ? "Pause" : "Play");
}

export function showResults(videos: Video[], actions: Actions): void {
  $<HTMLUListElement>("results").replaceChildren(
    ...videos.map((video) => {
      const li = document.createElement("li");
      const b = document.createElement("button");
      b.type = "button";
      b.dataset.entry = video.id;
      const label = `${video.name} (${duration(video.duration)})`;
      b.textContent = label;
      b.setAttribute("aria-label", `Play ${label} for everyone`);
      b.onclick = () => actions.pick(video);
      li.append(b);
      return li;
    }),
  );
}

/** The video's title over the player (its id when the host cannot name it). */
export function showTitle(text: string): void {
  $<HTMLDivElement>("title").textContent = text;
}
