//! A private PostgreSQL cluster: `initdb` into a temporary folder, `postgres` on a free
//! loopback port with its socket in that folder, trust authentication for user `kd`.
//! `initdb` refuses to run as root, so as root both run as the `postgres` user.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result, bail};

use super::{die_with_parent, free_port, fresh_dir, program, stop_child, wait_until_ready};

pub struct PostgresServer {
    /// The temporary folder: `data/` (the cluster) and `postgres.log`.
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    /// Who runs the server (the `postgres` user when this process is root).
    user: Option<(u32, u32)>,
    child: Option<Child>,
}

impl PostgresServer {
    /// Creates a cluster and starts it on a free port; it stops when this value is dropped.
    pub fn start() -> Result<Self> {
        let bin = bin_dir()?;
        let dir = fresh_dir("postgres")?;
        let user = if unsafe { libc::geteuid() } == 0 {
            let (uid, gid) = postgres_user()?;
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                .with_context(|| format!("handing {} to the postgres user", dir.display()))?;
            Some((uid, gid))
        } else {
            None
        };
        let mut server = Self {
            dir,
            bin,
            port: free_port()?,
            user,
            child: None,
        };
        server.initdb()?;
        server.resume()?;
        Ok(server)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A connection URL for database `db`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://kd@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates an empty database and returns its URL.
    pub fn create_database(&self, name: &str) -> Result<String> {
        let out = Command::new(self.bin.join("psql"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "kd"])
            .args(["-d", "postgres", "-v", "ON_ERROR_STOP=1", "-q", "-c"])
            .arg(format!("CREATE DATABASE \"{name}\""))
            .output()
            .context("running psql")?;
        if !out.status.success() {
            bail!(
                "creating database {name}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(self.url(name))
    }

    /// Stops the server (fast shutdown: connections are closed, committed data is kept).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            stop_child(&mut child, libc::SIGINT);
        }
    }

    /// Starts it again on the same port and data after [`Self::stop`].
    pub fn resume(&mut self) -> Result<()> {
        let log = self.dir.join("postgres.log");
        let logfile = std::fs::File::create(&log)?;
        if let Some((uid, gid)) = self.user {
            std::os::unix::fs::chown(&log, Some(uid), Some(gid))?;
        }
        let mut cmd = self.as_owner("postgres");
        cmd.arg("-D")
            .arg(self.dir.join("data"))
            .args(["-p", &self.port.to_string(), "-k"])
            .arg(&self.dir)
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "max_connections=300",
            ])
            // As SQLite's WAL with synchronous=NORMAL (the embedded default): a commit does
            // not wait for its own fsync; a crash of the machine may lose the last ones.
            .args(["-c", "synchronous_commit=off"])
            .stdin(Stdio::null())
            .stdout(logfile.try_clone()?)
            .stderr(logfile);
        // SIGQUIT: immediate shutdown, children included.
        die_with_parent(&mut cmd, libc::SIGQUIT);
        let mut child = cmd.spawn().context("starting postgres")?;
        let (isready, port) = (self.bin.join("pg_isready"), self.port.to_string());
        wait_until_ready("postgres", &mut child, &log, || {
            Command::new(&isready)
                .args(["-q", "-h", "127.0.0.1", "-p", &port])
                .status()
                .is_ok_and(|s| s.success())
        })?;
        self.child = Some(child);
        Ok(())
    }

    fn initdb(&self) -> Result<()> {
        let out = self
            .as_owner("initdb")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args([
                "-U",
                "kd",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .output()
            .context("running initdb")?;
        if !out.status.success() {
            bail!(
                "initdb failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// A command for one of PostgreSQL's programs, run by the cluster's owner.
    fn as_owner(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        cmd.current_dir(&self.dir);
        if let Some((uid, gid)) = self.user {
            use std::os::unix::process::CommandExt;
            cmd.uid(uid).gid(gid).env("HOME", &self.dir);
        }
        cmd
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// PostgreSQL's programs: Debian keeps them in `/usr/lib/postgresql/<major>/bin`.
fn bin_dir() -> Result<PathBuf> {
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin").join("initdb"))
        .collect();
    candidates.sort();
    candidates.reverse();
    candidates.push(PathBuf::from("/usr/local/bin/initdb"));
    let initdb = program(&candidates, "initdb", "postgresql")?;
    Ok(initdb.parent().unwrap_or(Path::new("/")).to_path_buf())
}

/// The `postgres` user's uid and gid (Debian's package creates it).
fn postgres_user() -> Result<(u32, u32)> {
    let name = CString::new("postgres").expect("no NUL");
    // SAFETY: getpwnam returns a pointer to static storage or NULL; read at once.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    if pw.is_null() {
        bail!(
            "running as root needs the `postgres` user to own the cluster: install PostgreSQL with `apt-get install -y postgresql`"
        );
    }
    Ok(unsafe { ((*pw).pw_uid, (*pw).pw_gid) })
}
