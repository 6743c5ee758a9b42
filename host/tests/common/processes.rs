//! Helpers for tests that run `kdhost serve` as a process of its own.

use std::time::{Duration, Instant};

use super::HANG;

/// A loopback port nobody listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until the host at `base` answers `/healthz` (only a hang fails).
pub async fn wait_healthy(base: &str) {
    let until = Instant::now() + HANG;
    while Instant::now() < until {
        if reqwest::get(format!("{base}/healthz"))
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{base} did not become healthy");
}
