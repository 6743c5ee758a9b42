#!/usr/bin/env bash
# Development against real Discord from this machine: builds and starts `kdhost serve`,
# opens a Cloudflare quick tunnel to it (`cloudflared tunnel --url`), and prints what to
# paste into Discord's Developer Portal. Settings come from .env (see .env.example).
# Ctrl-C stops both.
#
#   deploy/dev.sh                 (KD_DEV_PORT=8080 to choose the local port)
set -euo pipefail
cd "$(dirname "$0")/.."

PORT=${KD_DEV_PORT:-8080}
step() { printf '\n== %s\n' "$*"; }
fail() { printf '\ndev.sh: %s\n' "$*" >&2; exit 1; }

command -v cloudflared >/dev/null || fail "cloudflared is missing: https://developers.cloudflare.com/cloudflare-one/connections/connect-networks/downloads/ (a quick tunnel needs no account)"
[ -f .env ] || fail "no .env: copy .env.example to .env and fill in DISCORD_APPLICATION_ID, DISCORD_PUBLIC_KEY and DISCORD_BOT_TOKEN"

step "building (the Activity's page and kdhost)"
rustup target add wasm32-wasip2 >/dev/null
npm ci --prefix activity --no-audit --no-fund >/dev/null
npm run build --prefix activity >/dev/null
cargo build -p kdhost

logs=$(mktemp -d)
cleanup() {
    [ -n "${TUNNEL:-}" ] && kill "$TUNNEL" 2>/dev/null || true
    [ -n "${HOST:-}" ] && kill -TERM "$HOST" 2>/dev/null && wait "$HOST" 2>/dev/null || true
}
trap cleanup EXIT INT TERM

step "opening a Cloudflare quick tunnel to http://127.0.0.1:$PORT"
cloudflared tunnel --no-autoupdate --url "http://127.0.0.1:$PORT" >"$logs/tunnel.log" 2>&1 &
TUNNEL=$!
URL=
for _ in $(seq 1 120); do
    URL=$(grep -oE 'https://[a-z0-9-]+\.trycloudflare\.com' "$logs/tunnel.log" | head -1 || true)
    [ -n "$URL" ] && break
    kill -0 "$TUNNEL" 2>/dev/null || { cat "$logs/tunnel.log"; fail "cloudflared stopped"; }
    sleep 0.5
done
[ -n "$URL" ] || { tail -20 "$logs/tunnel.log"; fail "no tunnel URL after 60 s"; }

step "starting kdhost serve on 127.0.0.1:$PORT (public URL $URL)"
KD_LISTEN=127.0.0.1:$PORT KD_PUBLIC_URL=$URL KD_CLIENT_IP_HEADER=CF-Connecting-IP \
    target/debug/kdhost serve &
HOST=$!
for _ in $(seq 1 120); do
    curl -fsS -o /dev/null "http://127.0.0.1:$PORT/readyz" 2>/dev/null && break
    kill -0 "$HOST" 2>/dev/null || fail "kdhost stopped (its log is above)"
    sleep 0.5
done

host=${URL#https://}
cat <<MSG

== Paste into https://discord.com/developers/applications → your application:
   General Information → Interactions Endpoint URL:
       $URL/interactions
   Activities → URL Mappings (docs/activity.md):
       /               →  $host
       /kaltura-cdn    →  cdnapisec.kaltura.com   (your KALTURA_CDN_URL host)
       /kaltura-api    →  www.kaltura.com         (your KALTURA_SERVICE_URL host)
       /discord-cdn    →  cdn.discordapp.com
   The tunnel's address changes each run: paste again after a restart.
   Ctrl-C stops kdhost (gracefully) and the tunnel.
MSG
wait "$HOST"
