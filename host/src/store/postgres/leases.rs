//! Named leases on the database's clock: one owner at a time; the owner renews before
//! expiry; anyone may take an expired (or released) lease, which bumps its epoch.

use anyhow::Result;

use super::{NOW_MS, PostgresStore};

/// A lease someone holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub name: String,
    pub owner: String,
    pub epoch: i64,
}

impl PostgresStore {
    /// Takes or renews lease `name` for `owner` for `ttl_ms`: its epoch, or `None` while
    /// someone else holds it.
    pub async fn acquire(&self, name: &str, owner: &str, ttl_ms: i64) -> Result<Option<i64>> {
        let c = self.client().await?;
        let sql = format!(
            "INSERT INTO leases AS l (name, owner, epoch, expires_at)
             VALUES ($1, $2, 1, {NOW_MS} + $3)
             ON CONFLICT (name) DO UPDATE SET
                 epoch = CASE WHEN l.owner = $2 THEN l.epoch ELSE l.epoch + 1 END,
                 owner = $2, expires_at = {NOW_MS} + $3
             WHERE l.owner = $2 OR l.owner IS NULL OR l.expires_at < {NOW_MS}
             RETURNING epoch"
        );
        let row = c.query_opt(&sql, &[&name, &owner, &ttl_ms]).await?;
        Ok(row.map(|r| r.get(0)))
    }

    /// Gives lease `name` up if `owner` holds it.
    pub async fn release_lease(&self, name: &str, owner: &str) -> Result<()> {
        let c = self.client().await?;
        c.execute(
            "UPDATE leases SET owner = NULL, expires_at = 0 WHERE name = $1 AND owner = $2",
            &[&name, &owner],
        )
        .await?;
        Ok(())
    }

    /// Unexpired leases whose name starts with `prefix`.
    pub async fn holders(&self, prefix: &str) -> Result<Vec<Holder>> {
        let c = self.client().await?;
        let sql = format!(
            "SELECT name, owner, epoch FROM leases
             WHERE starts_with(name, $1) AND owner IS NOT NULL AND expires_at >= {NOW_MS}
             ORDER BY name"
        );
        let rows = c.query(&sql, &[&prefix]).await?;
        Ok(rows
            .iter()
            .map(|r| Holder {
                name: r.get(0),
                owner: r.get(1),
                epoch: r.get(2),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_owner_at_a_time_and_a_new_epoch_with_every_change_of_hands() {
        let url = crate::store::conformance::postgres().await.1;
        let pg = PostgresStore::connect(&url).await.unwrap();
        assert_eq!(pg.acquire("leader", "a", 60_000).await.unwrap(), Some(1));
        // Renewed by its owner, refused to others while it lasts.
        assert_eq!(pg.acquire("leader", "a", 60_000).await.unwrap(), Some(1));
        assert_eq!(pg.acquire("leader", "b", 60_000).await.unwrap(), None);
        assert_eq!(pg.holders("lead").await.unwrap()[0].owner, "a");
        // Released (or run out), it changes hands with a new epoch.
        pg.release_lease("leader", "b").await.unwrap();
        assert_eq!(pg.acquire("leader", "b", 60_000).await.unwrap(), None);
        pg.release_lease("leader", "a").await.unwrap();
        assert!(pg.holders("leader").await.unwrap().is_empty());
        assert_eq!(pg.acquire("leader", "b", -1).await.unwrap(), Some(2));
        assert_eq!(pg.acquire("leader", "a", 60_000).await.unwrap(), Some(3));
        assert_eq!(pg.acquire("shard:0", "b", 60_000).await.unwrap(), Some(1));
        let names: Vec<String> = pg
            .holders("")
            .await
            .unwrap()
            .into_iter()
            .map(|h| h.name)
            .collect();
        assert_eq!(names, vec!["leader", "shard:0"]);
    }

    #[tokio::test]
    async fn one_of_two_instances_leads_and_the_other_takes_over_when_it_goes() {
        use crate::cluster::Leadership;
        let url = crate::store::conformance::postgres().await.1;
        let a_store = std::sync::Arc::new(PostgresStore::connect(&url).await.unwrap());
        let b_store = std::sync::Arc::new(PostgresStore::connect(&url).await.unwrap());
        use crate::app::stopping::Stopping;
        let (stop_a, stopping_a) = Stopping::new();
        let a = Leadership::elect(a_store, "a", stopping_a);
        a.until_leader().await;
        let b = Leadership::elect(b_store.clone(), "b", Stopping::never());
        // b cannot lead while a holds the lease.
        assert_eq!(b_store.acquire("leader", "c", 60_000).await.unwrap(), None);
        assert!(!b.is_leader() || !a.is_leader());
        // a stops cleanly: it gives the lease up at once and leads no more.
        stop_a.send();
        tokio::time::timeout(std::time::Duration::from_secs(120), b.until_leader())
            .await
            .expect("b leads once a has gone");
        assert!(b.is_leader());
        assert!(!a.is_leader());
    }
}
