//! A private `redis-server`: no persistence, loopback only.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};

use super::{die_with_parent, free_port, fresh_dir, program, stop_child, wait_until_ready};

pub struct RedisServer {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server on a free port; it stops when this value is dropped.
    pub fn start() -> Result<Self> {
        let mut server = Self {
            dir: fresh_dir("redis")?,
            port: free_port()?,
            child: None,
        };
        server.resume()?;
        Ok(server)
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server (its data is gone: it keeps none).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop_child(&mut child, libc::SIGTERM);
        }
    }

    /// Starts it again on the same port after [`Self::stop`].
    pub fn resume(&mut self) -> Result<()> {
        let bin = program(
            &[
                PathBuf::from("/usr/bin/redis-server"),
                PathBuf::from("/usr/local/bin/redis-server"),
            ],
            "redis-server",
            "redis-server",
        )?;
        let log = self.dir.join("redis.log");
        let mut cmd = Command::new(bin);
        cmd.args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--dir", &self.dir.to_string_lossy()])
            .args(["--logfile", &log.to_string_lossy()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        die_with_parent(&mut cmd, libc::SIGTERM);
        let mut child = cmd.spawn().context("starting redis-server")?;
        let port = self.port;
        wait_until_ready("redis-server", &mut child, &log, || ping(port))?;
        self.child = Some(child);
        Ok(())
    }
}

/// Whether a Redis server answers PING on the port.
pub(super) fn ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = [0u8; 7];
    s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
