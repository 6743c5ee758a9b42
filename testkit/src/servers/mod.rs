//! Private PostgreSQL and Redis servers from Debian's packages, for tests, benchmarks and
//! `kdhost demo --instances 3`: each on a free loopback port with its data in a fresh
//! temporary folder, started as this process's children and stopped with it (even when
//! the test process dies, through `PR_SET_PDEATHSIG`). Nothing already running is used.

mod postgres;
mod redis;

pub use postgres::PostgresServer;
pub use redis::RedisServer;

use std::sync::atomic::{AtomicU32, Ordering};

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// How long a server may take to accept connections before the start is a failure. It
/// bounds a hang only: the wait ends as soon as the server answers.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// A loopback port nobody listens on now.
fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A new empty folder under the system's temporary folder (folders that earlier runs,
/// no longer alive, left behind are removed first).
fn fresh_dir(kind: &str) -> Result<PathBuf> {
    sweep(kind);
    let dir = std::env::temp_dir().join(format!(
        "kd-{kind}-{}-{:x}",
        std::process::id(),
        rand::random::<u64>()
    ));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// Removes `kd-KIND-PID-*` folders whose process is gone (a shared server is never
/// dropped, so its folder stays when its test binary ends).
fn sweep(kind: &str) {
    let prefix = format!("kd-{kind}-");
    for entry in std::fs::read_dir(std::env::temp_dir())
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(pid) = name
            .strip_prefix(&prefix)
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        // SAFETY: signal 0 only asks whether the process exists.
        let gone = unsafe { libc::kill(pid, 0) } != 0
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if gone {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// The child dies with its parent (`signal` is what it receives), so an aborted test run
/// leaves no server behind.
fn die_with_parent(cmd: &mut Command, signal: libc::c_int) {
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, signal as libc::c_ulong) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Sends `signal` to a child and waits for it to exit.
fn stop_child(child: &mut Child, signal: libc::c_int) {
    if let Ok(None) = child.try_wait() {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as libc::pid_t, signal) };
        let _ = child.wait();
    }
}

/// Polls `ready` until it says yes, the child exits (its log tells why) or the hang bound.
fn wait_until_ready(
    what: &str,
    child: &mut Child,
    log: &Path,
    mut ready: impl FnMut() -> bool,
) -> Result<()> {
    let start = Instant::now();
    loop {
        if ready() {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!(
                "{what} exited ({status}) before accepting connections; its log ({}):\n{}",
                log.display(),
                tail(log)
            );
        }
        if start.elapsed() > READY_TIMEOUT {
            bail!(
                "{what} did not accept connections within {READY_TIMEOUT:?}; its log ({}):\n{}",
                log.display(),
                tail(log)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The last lines of a log file.
fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// A program from a Debian package, or a message saying which package to install.
fn program(candidates: &[PathBuf], name: &str, package: &str) -> Result<PathBuf> {
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .with_context(|| {
            format!("`{name}` was not found: install it with `apt-get install -y {package}`")
        })
}

/// One PostgreSQL server for a whole test binary, started on first use. It runs on a
/// thread of its own that lives as long as the process (a child dies with the thread that
/// started it), and stops when the process ends.
pub fn shared_postgres() -> Result<&'static PostgresServer> {
    static SHARED: std::sync::OnceLock<Result<PostgresServer, String>> = std::sync::OnceLock::new();
    SHARED
        .get_or_init(|| {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let started = PostgresServer::start().map_err(|e| format!("{e:#}"));
                let ok = started.is_ok();
                let _ = tx.send(started);
                if ok {
                    // Parked for good: the server's parent thread must outlive its use.
                    loop {
                        std::thread::park();
                    }
                }
            });
            rx.recv()
                .unwrap_or_else(|_| Err("the server thread ended".into()))
        })
        .as_ref()
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// A new empty database on the shared server (one per test): its URL.
pub fn fresh_database() -> Result<String> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "t{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    shared_postgres()?.create_database(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_servers_start_answer_and_come_back_after_a_stop() {
        let mut pg = PostgresServer::start().unwrap();
        let url = pg.create_database("probe").unwrap();
        assert!(url.ends_with("/probe"));
        pg.stop();
        pg.resume().unwrap();
        // The database survived the restart: creating it again is refused.
        let again = pg.create_database("probe").unwrap_err().to_string();
        assert!(again.contains("already exists"), "{again}");

        let mut redis = RedisServer::start().unwrap();
        assert!(redis::ping(redis.port()));
        redis.stop();
        assert!(!redis::ping(redis.port()));
        redis.resume().unwrap();
        assert!(redis::ping(redis.port()));
    }
}
