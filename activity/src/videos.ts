// The host's video API as the Activity uses it: search (the room host picks a video) and
// playback info (Player v7 gets a USER session scoped to one entry). Calls carry the host
// token from sign-in; errors become the host's own message.

export interface Video {
  id: string;
  name: string;
  description: string;
  thumbnail_url: string | null;
  /** Seconds. */
  duration: number;
  status: number;
  tags: string[];
}

export interface PlayInfo {
  entry_id: string;
  partner_id: string;
  uiconf_id: string;
  script_url: string;
  session: { ks: string; expires_at: number };
}

export class HostApi {
  constructor(
    private readonly token: string,
    /** The Discord server the Activity runs in: its policy and Kaltura settings apply. */
    private readonly guildId: string | null,
  ) {}

  private async call<T>(method: string, path: string, params: Record<string, string> = {}): Promise<T> {
    const q = new URLSearchParams(params);
    if (this.guildId) q.set("guild_id", this.guildId);
    const res = await fetch(`${path}${q.size ? `?${q}` : ""}`, {
      method,
      headers: { authorization: `Bearer ${this.token}` },
    });
    const body = await res.json().catch(() => null);
    if (!res.ok) throw new Error(body?.error?.message ?? `${method} ${path}: HTTP ${res.status}`);
    return body as T;
  }

  async search(query: string, limit = 8): Promise<Video[]> {
    const r = await this.call<{ videos: Video[] }>("GET", "/api/v2/videos", { q: query, limit: String(limit) });
    return r.videos;
  }

  video(entryId: string): Promise<Video> {
    return this.call<Video>("GET", `/api/v1/videos/${encodeURIComponent(entryId)}`);
  }

  play(entryId: string): Promise<PlayInfo> {
    return this.call<PlayInfo>("POST", `/api/v1/videos/${encodeURIComponent(entryId)}/play`);
  }
}

/** A Kaltura entry id as people paste it (`1_abcd1234`). */
export function looksLikeEntryId(text: string): boolean {
  return /^\d_[a-z0-9]{8}$/i.test(text.trim());
}

export function duration(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = String(Math.floor(seconds % 60)).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}
