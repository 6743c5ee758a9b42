//! Change notices between instances: `NOTIFY kd_changes, '<what>'` sent in the transaction
//! of a change (delivered on commit), and a connection of its own that LISTENs. Notices
//! are not durable, so a listener also catches up on reconnect and on a slow poll.

use anyhow::Result;

use super::PostgresStore;

/// The channel change notices go to.
pub const CHANGES: &str = "kd_changes";

/// Tells every listening instance, when `tx` commits, that `what` changed.
pub(super) async fn announce(tx: &deadpool_postgres::Transaction<'_>, what: &str) -> Result<()> {
    tx.execute("SELECT pg_notify($1, $2)", &[&CHANGES, &what])
        .await?;
    Ok(())
}

impl PostgresStore {
    /// Waits for change notices on a connection of its own: calls `notice` for each, and
    /// returns when the connection ends (the caller reconnects and catches up).
    pub async fn listen(&self, mut notice: impl FnMut(&str)) -> Result<()> {
        use futures::StreamExt;
        let (client, mut connection) = self.config.connect(tokio_postgres::NoTls).await?;
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx)).boxed();
        // The connection is driven by the stream; LISTEN goes out meanwhile.
        let sql = format!("LISTEN {CHANGES}");
        let listen = client.batch_execute(&sql);
        tokio::pin!(listen);
        let mut listening = false;
        loop {
            tokio::select! {
                r = &mut listen, if !listening => {
                    r?;
                    listening = true;
                    notice("listening");
                }
                m = messages.next() => match m {
                    Some(Ok(tokio_postgres::AsyncMessage::Notification(n))) => notice(n.payload()),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e.into()),
                    None => return Ok(()),
                },
            }
        }
    }
}
