// Kaltura Player v7 behind the Player interface: the script comes from the partner's CDN
// (inside Discord through the Activity's URL mappings), each entry is loaded with a USER
// session the host scopes to that entry (`sview:<id>`), and the player's own API and media
// requests follow the same mappings.

import type { Player } from "./player";
import type { PlayInfo } from "./videos";

/** The part of Player v7's API the Activity uses. */
interface KalturaPlayerInstance {
  loadMedia(info: { entryId: string; ks?: string }): Promise<unknown>;
  play(): Promise<void> | void;
  pause(): void;
  currentTime: number;
  playbackRate: number;
  readonly paused: boolean;
  readonly duration: number;
  addEventListener(name: string, cb: () => void): void;
  /** Merges configuration; a new `provider.ks` is used for the player's next requests. */
  configure(config: object): void;
  destroy(): void;
}

declare global {
  interface Window {
    KalturaPlayer?: { setup(config: object): KalturaPlayerInstance };
  }
}

export interface KalturaEnv {
  partner_id: string;
  uiconf_id: string;
  service_url: string;
  cdn_url: string;
}

const scripts = new Map<string, Promise<void>>();

/** Renew a session 5 minutes before it ends (at least 30 s from now): a watch may outlast it. */
export function refreshDelayMs(expiresAt: number, nowMs: number): number {
  return Math.max(30_000, expiresAt * 1000 - nowMs - 5 * 60_000);
}

/** Loads a script once. */
function loadScript(src: string): Promise<void> {
  let p = scripts.get(src);
  if (!p) {
    p = new Promise<void>((resolve, reject) => {
      const el = document.createElement("script");
      el.src = src;
      el.onload = () => resolve();
      el.onerror = () => {
        scripts.delete(src);
        reject(new Error("the Kaltura player script could not be loaded"));
      };
      document.head.append(el);
    });
    scripts.set(src, p);
  }
  return p;
}

export class KalturaV7Player implements Player {
  private kp: KalturaPlayerInstance | null = null;
  private loaded: string | null = null;
  private buffering: ((b: boolean) => void)[] = [];
  private renew: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly targetId: string,
    private readonly env: KalturaEnv,
    /** The host's playback info for an entry (a scoped USER session inside). */
    private readonly playInfo: (entryId: string) => Promise<PlayInfo>,
    /** Rewrites an absolute URL through the Activity's URL mappings (identity outside Discord). */
    private readonly remap: (url: string) => string = (u) => u,
  ) {}

  async load(entryId: string): Promise<void> {
    if (this.loaded === entryId) return;
    this.loaded = entryId;
    try {
      const info = await this.playInfo(entryId);
      await loadScript(this.remap(info.script_url));
      const api = window.KalturaPlayer;
      if (!api) throw new Error("the Kaltura player script did not define KalturaPlayer");
      if (!this.kp) {
        this.kp = api.setup({
          targetId: this.targetId,
          provider: {
            partnerId: Number(this.env.partner_id),
            uiConfId: Number(this.env.uiconf_id),
            ks: info.session.ks,
            env: { serviceUrl: `${this.env.service_url}/api_v3`, cdnUrl: this.env.cdn_url },
          },
          playback: { autoplay: false },
        });
        for (const cb of this.buffering) this.listen(this.kp, cb);
      }
      await this.kp.loadMedia({ entryId, ks: info.session.ks });
      this.keepSession(entryId, refreshDelayMs(info.session.expires_at, Date.now()));
    } catch (e) {
      this.loaded = null; // the next state update tries again
      throw e;
    }
  }

  /** In `delayMs`, swaps in a fresh session for the same entry (before this one ends). */
  private keepSession(entryId: string, delayMs: number): void {
    if (this.renew) clearTimeout(this.renew);
    this.renew = setTimeout(() => {
      if (this.loaded !== entryId) return;
      this.playInfo(entryId).then(
        (info) => {
          this.kp?.configure({ provider: { ks: info.session.ks } });
          this.keepSession(entryId, refreshDelayMs(info.session.expires_at, Date.now()));
        },
        () => this.keepSession(entryId, 60_000), // the host was not reachable: again in a minute
      );
    }, delayMs);
  }

  private listen(kp: KalturaPlayerInstance, cb: (b: boolean) => void): void {
    kp.addEventListener("waiting", () => cb(true));
    kp.addEventListener("playing", () => cb(false));
    kp.addEventListener("canplay", () => cb(false));
  }

  async play(): Promise<void> {
    try {
      await this.kp?.play();
    } catch {
      throw new Error("autoplay-blocked");
    }
  }

  pause(): void {
    this.kp?.pause();
  }

  get currentTime(): number {
    return this.kp?.currentTime ?? 0;
  }

  set currentTime(t: number) {
    if (this.kp) this.kp.currentTime = t;
  }

  get playbackRate(): number {
    return this.kp?.playbackRate ?? 1;
  }

  set playbackRate(r: number) {
    if (this.kp) this.kp.playbackRate = r;
  }

  get paused(): boolean {
    return this.kp?.paused ?? true;
  }

  get duration(): number {
    return this.kp?.duration ?? Number.NaN;
  }

  onBuffering(cb: (buffering: boolean) => void): void {
    this.buffering.push(cb);
    if (this.kp) this.listen(this.kp, cb);
  }
}
