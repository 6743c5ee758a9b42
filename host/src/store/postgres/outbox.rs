//! The outbox in PostgreSQL: messages in one table, lanes leased in another. Claims skip
//! lanes another instance is claiming (`FOR UPDATE SKIP LOCKED`); every recorded result
//! locks its lane's row `FOR SHARE` with the lease's owner and epoch in the same statement,
//! so a takeover either waits for it or makes it record nothing.

use std::collections::{BTreeSet, HashMap};

use anyhow::Result;
use async_trait::async_trait;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::{NOW_MS, PostgresStore};
use crate::store::now_ms;
use crate::store::outbox::{
    Delivery, LaneLease, NewMessage, OutboxCounts, OutboxStore, Queued, Recorded, over_quota,
};

const COLUMNS: &str = "id, guild_id, channel, lane, body, source, created_at, state, attempts, next_at, last_error, message_id, done_at";

fn delivery(r: &Row) -> Delivery {
    Delivery {
        id: r.get(0),
        guild_id: r.get(1),
        channel: r.get(2),
        lane: r.get(3),
        body: r.get(4),
        source: r.get(5),
        created_at: r.get(6),
        state: r.get(7),
        attempts: r.get(8),
        next_at: r.get(9),
        last_error: r.get(10),
        message_id: r.get(11),
        done_at: r.get(12),
    }
}

fn lease(r: &Row) -> LaneLease {
    LaneLease {
        lane: r.get(0),
        owner: r.get(1),
        epoch: r.get(2),
    }
}

/// Queues messages inside a caller's transaction (the inbox completes events this way);
/// see [`OutboxStore::push`] for the quota. Each guild's count is taken under a
/// transaction lock on that guild, so instances pushing at once cannot both squeeze past it.
pub(super) async fn push_in(
    tx: &deadpool_postgres::Transaction<'_>,
    messages: &[NewMessage],
    quota: u64,
) -> Result<Vec<Queued>> {
    if messages.is_empty() {
        return Ok(Vec::new());
    }
    let now = now_ms();
    // Locks taken in one order, so two pushes cannot wait on each other.
    let guilds: BTreeSet<&str> = messages.iter().map(|m| m.guild_id.as_str()).collect();
    let mut waiting: HashMap<&str, u64> = HashMap::new();
    for g in guilds {
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext('outbox-guild:' || $1))",
            &[&g],
        )
        .await?;
        let count: i64 = tx
            .query_one(
                "SELECT COUNT(*) FROM outbox WHERE guild_id = $1 AND state = 'pending'",
                &[&g],
            )
            .await?
            .get(0);
        waiting.insert(g, count as u64);
    }
    // Ids drawn first and handed out in ascending order: a lane is delivered in id order,
    // and a set-based insert alone promises no order of its ids.
    let mut ids: Vec<i64> = tx
        .query(
            "SELECT nextval(pg_get_serial_sequence('outbox', 'id')) FROM generate_series(1, $1::bigint)",
            &[&(messages.len() as i64)],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    ids.sort_unstable();
    let mut rows = Rows::default();
    let mut queued = Vec::with_capacity(messages.len());
    for (m, id) in messages.iter().zip(ids) {
        let n = waiting.get_mut(m.guild_id.as_str()).expect("counted above");
        let refused = if *n >= quota {
            crate::telemetry::METRICS
                .deliveries
                .with_label_values(&["over_quota"])
                .inc();
            Some(over_quota(&m.guild_id, quota))
        } else {
            *n += 1;
            None
        };
        rows.add(id, m, refused.clone());
        queued.push(Queued { id, refused });
    }
    tx.execute(
        "INSERT INTO outbox (id, guild_id, channel, lane, body, source, created_at, next_at,
                             state, last_error, done_at)
         SELECT id, guild_id, channel, lane, body::jsonb, source, $8::bigint, $8::bigint,
                CASE WHEN last_error IS NULL THEN 'pending' ELSE 'dead' END, last_error,
                CASE WHEN last_error IS NULL THEN NULL ELSE $8::bigint END
         FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::text[]) AS m(id, guild_id, channel, lane, body, source, last_error)",
        &[
            &rows.id,
            &rows.guild_id,
            &rows.channel,
            &rows.lane,
            &rows.body,
            &rows.source,
            &rows.last_error,
            &now,
        ],
    )
    .await?;
    let lanes: BTreeSet<&String> = rows
        .lane
        .iter()
        .zip(&rows.last_error)
        .filter(|(_, refused)| refused.is_none())
        .map(|(lane, _)| lane)
        .collect();
    if !lanes.is_empty() {
        let lanes: Vec<&String> = lanes.into_iter().collect();
        tx.execute(
            "INSERT INTO outbox_lanes (lane) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING",
            &[&lanes],
        )
        .await?;
    }
    Ok(queued)
}

/// Messages as columns, for one `unnest` insert.
#[derive(Default)]
struct Rows {
    id: Vec<i64>,
    guild_id: Vec<String>,
    channel: Vec<String>,
    lane: Vec<String>,
    body: Vec<String>,
    source: Vec<String>,
    last_error: Vec<Option<String>>,
}

impl Rows {
    fn add(&mut self, id: i64, m: &NewMessage, refused: Option<String>) {
        self.id.push(id);
        self.guild_id.push(m.guild_id.clone());
        self.channel.push(m.channel.clone());
        self.lane.push(NewMessage::lane(&m.guild_id, &m.channel));
        self.body.push(m.body.to_string());
        self.source.push(m.source.clone());
        self.last_error.push(refused);
    }
}

impl PostgresStore {
    /// Runs an update of message `id` only while `lease` holds its lane (see the module).
    async fn fenced(
        &self,
        set: &str,
        returning: &str,
        id: i64,
        lease: &LaneLease,
        extra: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>> {
        let c = self.client().await?;
        let sql = format!(
            "WITH held AS (SELECT 1 FROM outbox_lanes
                           WHERE lane = $2 AND owner = $3 AND epoch = $4 FOR SHARE)
             UPDATE outbox SET {set} WHERE id = $1 AND lane = $2 AND EXISTS (SELECT 1 FROM held)
             RETURNING {returning}"
        );
        let mut params: Vec<&(dyn ToSql + Sync)> =
            vec![&id, &lease.lane, &lease.owner, &lease.epoch];
        params.extend_from_slice(extra);
        let stmt = c.prepare_cached(&sql).await?;
        Ok(c.query_opt(&stmt, &params).await?)
    }
}

fn recorded<T>(row: Option<Row>, read: impl FnOnce(&Row) -> T) -> Recorded<T> {
    match row {
        Some(r) => Recorded::Done(read(&r)),
        None => Recorded::LeaseLost,
    }
}

#[async_trait]
impl OutboxStore for PostgresStore {
    async fn push(&self, messages: &[NewMessage], guild_quota: u64) -> Result<Vec<Queued>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let queued = push_in(&tx, messages, guild_quota).await?;
        tx.commit().await?;
        Ok(queued)
    }

    async fn claim_lanes(
        &self,
        owner: &str,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<LaneLease>> {
        let c = self.client().await?;
        // A lane changes hands with a new epoch; its holder keeps its own.
        let sql = format!(
            "UPDATE outbox_lanes l
             SET epoch = CASE WHEN l.owner = $1 THEN l.epoch ELSE l.epoch + 1 END,
                 owner = $1, expires_at = {NOW_MS} + $2
             WHERE l.lane IN (SELECT c.lane FROM outbox_lanes c
                              WHERE (c.owner IS NULL OR c.owner = $1 OR c.expires_at < {NOW_MS})
                              AND EXISTS (SELECT 1 FROM outbox o
                                          WHERE o.lane = c.lane AND o.state = 'pending')
                              LIMIT $3 FOR UPDATE SKIP LOCKED)
             RETURNING l.lane, l.owner, l.epoch"
        );
        let rows = c.query(&sql, &[&owner, &lease_ms, &(limit as i64)]).await?;
        Ok(rows.iter().map(lease).collect())
    }

    async fn renew(&self, owner: &str, lease_ms: i64) -> Result<Vec<LaneLease>> {
        let c = self.client().await?;
        let sql = format!(
            "UPDATE outbox_lanes SET expires_at = {NOW_MS} + $2 WHERE owner = $1
             RETURNING lane, owner, epoch"
        );
        let rows = c.query(&sql, &[&owner, &lease_ms]).await?;
        Ok(rows.iter().map(lease).collect())
    }

    async fn release(&self, lease: &LaneLease) -> Result<()> {
        let c = self.client().await?;
        c.execute(
            "UPDATE outbox_lanes SET owner = NULL, expires_at = 0
             WHERE lane = $1 AND owner = $2 AND epoch = $3",
            &[&lease.lane, &lease.owner, &lease.epoch],
        )
        .await?;
        Ok(())
    }

    async fn head(&self, lane: &str) -> Result<Option<Delivery>> {
        let c = self.client().await?;
        let sql = format!(
            "SELECT {COLUMNS} FROM outbox WHERE lane = $1 AND state = 'pending' ORDER BY id LIMIT 1"
        );
        let stmt = c.prepare_cached(&sql).await?;
        Ok(c.query_opt(&stmt, &[&lane]).await?.as_ref().map(delivery))
    }

    async fn get(&self, id: i64) -> Result<Option<Delivery>> {
        let c = self.client().await?;
        let sql = format!("SELECT {COLUMNS} FROM outbox WHERE id = $1");
        Ok(c.query_opt(&sql, &[&id]).await?.as_ref().map(delivery))
    }

    async fn sent(&self, id: i64, message_id: &str, lease: &LaneLease) -> Result<Recorded<()>> {
        let row = self
            .fenced(
                "state = 'sent', attempts = attempts + 1, message_id = $5, done_at = $6,
                 last_error = NULL",
                "id",
                id,
                lease,
                &[&message_id, &now_ms()],
            )
            .await?;
        Ok(recorded(row, |_| ()))
    }

    async fn retry(
        &self,
        id: i64,
        error: &str,
        next_at: i64,
        counted: bool,
        lease: &LaneLease,
    ) -> Result<Recorded<i64>> {
        let row = self
            .fenced(
                "attempts = attempts + $7, last_error = $5, next_at = $6",
                "attempts",
                id,
                lease,
                &[&error, &next_at, &i64::from(counted)],
            )
            .await?;
        Ok(recorded(row, |r| r.get(0)))
    }

    async fn dead(&self, id: i64, error: &str, lease: &LaneLease) -> Result<Recorded<()>> {
        let row = self
            .fenced(
                "state = 'dead', attempts = attempts + 1, last_error = $5, done_at = $6",
                "id",
                id,
                lease,
                &[&error, &now_ms()],
            )
            .await?;
        Ok(recorded(row, |_| ()))
    }

    async fn list(
        &self,
        guild_id: &str,
        state: Option<&str>,
        limit: usize,
        before_id: Option<i64>,
    ) -> Result<Vec<Delivery>> {
        let c = self.client().await?;
        let sql = format!(
            "SELECT {COLUMNS} FROM outbox WHERE guild_id = $1 AND id < $2
             AND ($3::text IS NULL OR state = $3) ORDER BY id DESC LIMIT $4"
        );
        let rows = c
            .query(
                &sql,
                &[
                    &guild_id,
                    &before_id.unwrap_or(i64::MAX),
                    &state,
                    &(limit as i64),
                ],
            )
            .await?;
        Ok(rows.iter().map(delivery).collect())
    }

    async fn counts(&self) -> Result<OutboxCounts> {
        let c = self.client().await?;
        let row = c
            .query_one(
                "SELECT (SELECT COUNT(*) FROM outbox WHERE state = 'pending'),
                        (SELECT COUNT(*) FROM outbox WHERE state = 'dead')",
                &[],
            )
            .await?;
        Ok(OutboxCounts {
            pending: row.get(0),
            dead: row.get(1),
        })
    }

    async fn prune(&self, sent_ms: i64, dead_ms: i64) -> Result<usize> {
        let c = self.client().await?;
        let now = now_ms();
        let sent = c
            .execute(
                "DELETE FROM outbox WHERE state = 'sent' AND done_at < $1",
                &[&(now - sent_ms)],
            )
            .await?;
        let dead = c
            .execute(
                "DELETE FROM outbox WHERE state = 'dead' AND done_at < $1",
                &[&(now - dead_ms)],
            )
            .await?;
        c.execute(
            "DELETE FROM outbox_lanes l WHERE l.owner IS NULL AND NOT EXISTS
             (SELECT 1 FROM outbox o WHERE o.lane = l.lane AND o.state = 'pending')",
            &[],
        )
        .await?;
        Ok((sent + dead) as usize)
    }
}
