//! Helpers for tests that run `kdhost serve` as a process of its own.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;

use super::HANG;

/// `kdhost serve` for the folder `dir` (its `config/`, `plugins/`, `scripts/`) on `port`,
/// keeping its data in `data`, against the Discord stand-in; Kaltura partner 1234567 signs
/// its webhooks with `secret` (its API is not reachable). Delivery retries fast and one
/// guild may have many messages waiting. The process dies with the test, even one that
/// is itself killed.
pub fn serve_command(
    dir: &Path,
    data: &Path,
    port: u16,
    standin: &testkit::DiscordStandIn,
    secret: &str,
) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kdhost"));
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
            Ok(())
        });
    }
    cmd.arg("serve")
        .current_dir(dir)
        .env("KD_LISTEN", format!("127.0.0.1:{port}"))
        .env("KD_CONFIG", dir.join("config"))
        .env("KD_PLUGINS", dir.join("plugins"))
        .env("KD_SCRIPTS", dir.join("scripts"))
        .env("KD_DATA", data)
        .env("DISCORD_PUBLIC_KEY", standin.public_key_hex())
        .env("DISCORD_APPLICATION_ID", standin.application_id())
        .env("DISCORD_BOT_TOKEN", "standin-bot-token")
        .env("DISCORD_API_BASE", &standin.base_url)
        .env("KALTURA_PARTNER_ID", "1234567")
        .env("KALTURA_ADMIN_SECRET", secret)
        .env("KALTURA_SERVICE_URL", "http://127.0.0.1:9")
        .env("KD_DELIVERY_RETRY_MS", "50")
        .env("KD_DELIVERY_GUILD_QUOTA", "100000")
        .env("RUST_LOG", "error")
        .stdout(Stdio::null());
    cmd
}

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

/// Posts each job's notification (`make`) to `urls[job % urls.len()]`, 16 at a time;
/// returns the jobs that were not acknowledged (Kaltura would send those again).
pub async fn post_notifications(
    urls: &[String],
    jobs: Vec<u64>,
    make: impl Fn(u64) -> testkit::SignedNotification,
) -> Vec<u64> {
    let client = reqwest::Client::new();
    let make = &make;
    futures::stream::iter(jobs)
        .map(|job| {
            let client = client.clone();
            async move {
                let url = &urls[job as usize % urls.len()];
                match testkit::kaltura::notify::post(&client, url, &make(job)).await {
                    Ok((200, _)) => None,
                    _ => Some(job),
                }
            }
        })
        .buffer_unordered(16)
        .filter_map(|x| async move { x })
        .collect()
        .await
}
