//! The PostgreSQL schema, as numbered migrations. Each runs once, in its own transaction,
//! recorded in `schema_migrations`; instances starting together serialise on an advisory
//! lock. A migration is never edited once released: a change is a new one.

use anyhow::{Context, Result};

use super::PostgresStore;

/// (version, name, SQL).
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "durable stores", V1),
    (2, "rules and plugin components", V2),
    (3, "instances that take no gateway shards", V3),
    (
        4,
        "personal kv scopes: counted in their guild's quota, with write times",
        V4,
    ),
    (5, "personal notification preferences", V5),
];

/// Serialises migrations across instances (any constant; this one spells "kdhost").
const LOCK_KEY: i64 = 0x6b64_686f_7374;

const V1: &str = r#"
CREATE TABLE kv (
    plugin TEXT NOT NULL,
    scope  TEXT NOT NULL,
    key    TEXT COLLATE "C" NOT NULL,
    value  BYTEA NOT NULL,
    PRIMARY KEY (plugin, scope, key)
);
-- The running total of each (plugin, scope): kept by a trigger in the transaction of every
-- change, so a single-statement upsert keeps it exact; last_delta is what the latest
-- change added (the quota check reads it).
CREATE TABLE kv_usage (
    plugin     TEXT NOT NULL,
    scope      TEXT NOT NULL,
    bytes      BIGINT NOT NULL,
    last_delta BIGINT NOT NULL,
    PRIMARY KEY (plugin, scope)
);
CREATE FUNCTION kv_track_usage() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    d BIGINT;
    p TEXT;
    s TEXT;
BEGIN
    IF TG_OP = 'DELETE' THEN
        d := -(octet_length(OLD.key) + octet_length(OLD.value));
        p := OLD.plugin; s := OLD.scope;
    ELSIF TG_OP = 'UPDATE' THEN
        d := octet_length(NEW.key) + octet_length(NEW.value)
             - octet_length(OLD.key) - octet_length(OLD.value);
        p := NEW.plugin; s := NEW.scope;
    ELSE
        d := octet_length(NEW.key) + octet_length(NEW.value);
        p := NEW.plugin; s := NEW.scope;
    END IF;
    INSERT INTO kv_usage AS u (plugin, scope, bytes, last_delta) VALUES (p, s, d, d)
        ON CONFLICT (plugin, scope) DO UPDATE SET bytes = u.bytes + d, last_delta = d;
    RETURN NULL;
END $$;
CREATE TRIGGER kv_track_usage AFTER INSERT OR UPDATE OR DELETE ON kv
    FOR EACH ROW EXECUTE FUNCTION kv_track_usage();

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE inbox (
    seq           BIGSERIAL PRIMARY KEY,
    source        TEXT NOT NULL,
    dedupe_key    TEXT NOT NULL UNIQUE,
    received_at   BIGINT NOT NULL,
    event         TEXT NOT NULL,
    processed_at  BIGINT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    claimed_by    TEXT,
    claimed_until BIGINT
);
CREATE INDEX inbox_unprocessed ON inbox (seq) WHERE processed_at IS NULL;
CREATE INDEX inbox_processed ON inbox (received_at) WHERE processed_at IS NOT NULL;

CREATE TABLE outbox (
    id         BIGSERIAL PRIMARY KEY,
    guild_id   TEXT NOT NULL,
    channel    TEXT NOT NULL,
    lane       TEXT NOT NULL,
    body       JSONB NOT NULL,
    source     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    state      TEXT NOT NULL DEFAULT 'pending',
    attempts   BIGINT NOT NULL DEFAULT 0,
    next_at    BIGINT NOT NULL,
    last_error TEXT,
    message_id TEXT,
    done_at    BIGINT
);
CREATE INDEX outbox_lane ON outbox (lane, id) WHERE state = 'pending';
CREATE INDEX outbox_guild ON outbox (guild_id, id);
CREATE INDEX outbox_guild_pending ON outbox (guild_id) WHERE state = 'pending';
CREATE INDEX outbox_dead ON outbox (done_at) WHERE state = 'dead';
CREATE INDEX outbox_sent ON outbox (done_at) WHERE state = 'sent';
-- One row per lane: who holds it, until when (the database's clock), and the fencing
-- epoch every recorded result must match.
CREATE TABLE outbox_lanes (
    lane       TEXT PRIMARY KEY,
    owner      TEXT,
    epoch      BIGINT NOT NULL DEFAULT 0,
    expires_at BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE audit (
    id       BIGSERIAL PRIMARY KEY,
    at       BIGINT NOT NULL,
    guild_id TEXT NOT NULL,
    actor    TEXT NOT NULL,
    action   TEXT NOT NULL,
    target   TEXT NOT NULL,
    before   JSONB,
    after    JSONB,
    outcome  TEXT NOT NULL
);
CREATE INDEX audit_guild ON audit (guild_id, id);
CREATE INDEX audit_at ON audit (at);

-- The instances sharing this database, each alive while its heartbeat is recent.
CREATE TABLE instances (
    id           TEXT PRIMARY KEY,
    host         TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL,
    redis        BOOLEAN NOT NULL
);

-- Named leases (the cluster's leader, gateway shards): one owner at a time, an epoch that
-- grows with every change of hands, an expiry on the database's clock.
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    owner      TEXT,
    epoch      BIGINT NOT NULL DEFAULT 0,
    expires_at BIGINT NOT NULL DEFAULT 0
);

-- Guild config overrides, the truth when instances share a database. Every change takes
-- the next version of one sequence (a removal keeps its row, with no body), so an instance
-- catches up by asking for the versions it has not seen.
CREATE SEQUENCE config_versions;
CREATE TABLE guild_configs (
    guild_id   TEXT PRIMARY KEY,
    body       JSONB,
    digest     TEXT,
    version    BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX guild_configs_version ON guild_configs (version);
"#;

/// `DISCORD_SHARDS=none` instances (HTTP only) do not count in the shards' spread.
const V3: &str = r#"
ALTER TABLE instances ADD COLUMN shares_shards BOOLEAN NOT NULL DEFAULT TRUE;
"#;

/// A user scope (`<guild>/u/<user>`) counts in its guild's quota; values get their write
/// time (what is there now counts as written at the upgrade) for the retention of
/// personal values.
const V4: &str = r#"
ALTER TABLE kv ADD COLUMN updated_at BIGINT NOT NULL
    DEFAULT (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT;
ALTER TABLE kv ALTER COLUMN updated_at SET DEFAULT 0;
CREATE OR REPLACE FUNCTION kv_track_usage() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    d BIGINT;
    p TEXT;
    s TEXT;
BEGIN
    IF TG_OP = 'DELETE' THEN
        d := -(octet_length(OLD.key) + octet_length(OLD.value));
        p := OLD.plugin; s := OLD.scope;
    ELSIF TG_OP = 'UPDATE' THEN
        d := octet_length(NEW.key) + octet_length(NEW.value)
             - octet_length(OLD.key) - octet_length(OLD.value);
        p := NEW.plugin; s := NEW.scope;
    ELSE
        d := octet_length(NEW.key) + octet_length(NEW.value);
        p := NEW.plugin; s := NEW.scope;
    END IF;
    s := split_part(s, '/u/', 1);
    INSERT INTO kv_usage AS u (plugin, scope, bytes, last_delta) VALUES (p, s, d, d)
        ON CONFLICT (plugin, scope) DO UPDATE SET bytes = u.bytes + d, last_delta = d;
    RETURN NULL;
END $$;
"#;

/// What each person asked to hear about by direct message, and their mutes.
const V5: &str = r#"
CREATE TABLE subscriptions (
    guild_id   TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    topic      TEXT NOT NULL,
    value      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (guild_id, user_id, topic, value)
);
CREATE INDEX subscriptions_by_topic ON subscriptions (guild_id, topic, value);
CREATE INDEX subscriptions_by_user ON subscriptions (user_id);
CREATE TABLE mutes (
    guild_id TEXT NOT NULL,
    user_id  TEXT NOT NULL,
    until_ms BIGINT NOT NULL,
    PRIMARY KEY (guild_id, user_id)
);
"#;

const V2: &str = r#"
-- Guild rules when instances share a database: one row per rule name (`global/x.rhai`,
-- `guilds/<id>/x.rhai`), versioned from the same sequence as guild configs; a removal
-- keeps its row with no source.
CREATE TABLE rules (
    name       TEXT PRIMARY KEY,
    guild_id   TEXT,
    source     TEXT,
    digest     TEXT,
    version    BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX rules_version ON rules (version);

-- Plugin components: the bytes once per content digest, and which digest each plugin
-- name serves (none: unpublished).
CREATE TABLE plugin_blobs (
    digest     TEXT PRIMARY KEY,
    bytes      BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE plugins (
    name       TEXT PRIMARY KEY,
    digest     TEXT REFERENCES plugin_blobs (digest),
    version    BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX plugins_version ON plugins (version);
"#;

/// A migration that ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub version: i32,
    pub name: &'static str,
}

/// Applies what the database lacks, in order; returns what ran (nothing when current).
pub async fn apply(store: &PostgresStore) -> Result<Vec<Applied>> {
    let mut client = store.client().await?;
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER PRIMARY KEY,
             name       TEXT NOT NULL,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )
    .await?;
    let done: Vec<i32> = tx
        .query("SELECT version FROM schema_migrations", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if let Some(newer) = done.iter().max().filter(|v| **v > latest()) {
        anyhow::bail!(
            "the database at {} has schema version {newer}, newer than this kdhost knows ({}): run the newer kdhost, or restore a backup",
            store.target(),
            latest()
        );
    }
    let mut applied = Vec::new();
    for &(version, name, sql) in MIGRATIONS {
        if done.contains(&version) {
            continue;
        }
        tx.batch_execute(sql)
            .await
            .with_context(|| format!("PostgreSQL migration {version} ({name})"))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            &[&version, &name],
        )
        .await?;
        applied.push(Applied { version, name });
    }
    tx.commit().await?;
    Ok(applied)
}

/// The newest schema version this build knows.
pub fn latest() -> i32 {
    MIGRATIONS.last().map(|m| m.0).unwrap_or(0)
}
