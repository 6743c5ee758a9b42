// One small player interface; the HTML5 <video> implementation plays the host's demo media
// (dev/demo and tests). Kaltura Player v7 implements the same interface inside Discord.

export interface Player {
  load(entryId: string): Promise<void>;
  play(): Promise<void>;
  pause(): void;
  currentTime: number;
  playbackRate: number;
  readonly paused: boolean;
  /** Seconds; NaN until the media says. */
  readonly duration: number;
  /** Called with true while the player waits for data, false when it can play. */
  onBuffering(cb: (buffering: boolean) => void): void;
}

export class Html5Player implements Player {
  private loaded: string | null = null;
  constructor(
    private readonly el: HTMLVideoElement,
    private readonly mediaUrl: (entryId: string) => string,
  ) {}

  async load(entryId: string): Promise<void> {
    if (this.loaded === entryId) return;
    this.loaded = entryId;
    this.el.src = this.mediaUrl(entryId);
    await new Promise<void>((resolve) => {
      const done = () => {
        this.el.removeEventListener("loadedmetadata", done);
        this.el.removeEventListener("error", done);
        resolve();
      };
      this.el.addEventListener("loadedmetadata", done);
      this.el.addEventListener("error", done);
    });
  }

  async play(): Promise<void> {
    try {
      await this.el.play();
    } catch {
      // Autoplay may be refused until the person interacts; the status line says so.
      throw new Error("autoplay-blocked");
    }
  }

  pause(): void {
    this.el.pause();
  }

  get currentTime(): number {
    return this.el.currentTime;
  }

  set currentTime(t: number) {
    this.el.currentTime = t;
  }

  get playbackRate(): number {
    return this.el.playbackRate;
  }

  set playbackRate(r: number) {
    this.el.playbackRate = r;
  }

  get paused(): boolean {
    return this.el.paused;
  }

  get duration(): number {
    return this.el.duration;
  }

  onBuffering(cb: (buffering: boolean) => void): void {
    this.el.addEventListener("waiting", () => cb(true));
    this.el.addEventListener("playing", () => cb(false));
    this.el.addEventListener("canplay", () => cb(false));
  }
}
