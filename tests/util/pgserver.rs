//! A PostgreSQL server of a test's own (PITFALLS.md): for tests that
//! restart the server or cut its network, which must not disturb the shared
//! test server the other tests use. `initdb` and `pg_ctl` from Debian's
//! packages, run as the `postgres` user when the tests run as root, in a
//! temp dir, on a free port, with trust authentication.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A running private server; stopped (immediately) when dropped.
pub struct PgServer {
    dir: tempfile::TempDir,
    pub port: u16,
    /// `listen_addresses`.
    listen: &'static str,
}

/// The newest installed server's binaries.
fn bin(name: &str) -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's server binaries (scripts/setup.sh --test installs them)")
        .flatten()
        .map(|e| e.path())
        .collect();
    versions.sort();
    versions.last().unwrap().join("bin").join(name)
}

/// A server binary's command, as `postgres` when we are root (initdb
/// refuses to run as root).
fn command(program: &Path) -> Command {
    if unsafe { libc::geteuid() } == 0 {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// Runs a server binary; fails the test with its output if it fails.
fn run(program: &Path, args: &[&str]) {
    let out = command(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{} {args:?}: {}{}",
        program.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl PgServer {
    /// Creates and starts a server listening on `127.0.0.1` at a free port.
    pub fn start() -> PgServer {
        PgServer::create("127.0.0.1", "")
    }

    /// A server that also listens on every address and trusts `postgres`
    /// from `10.0.0.0/8`: the test hosts of [`super::netns`] reach it over
    /// their veth links.
    pub fn start_for_hosts() -> PgServer {
        PgServer::create("*", "host all postgres 10.0.0.0/8 trust\n")
    }

    fn create(listen: &'static str, hba: &str) -> PgServer {
        let dir = tempfile::tempdir().unwrap();
        if unsafe { libc::geteuid() } == 0 {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(status.success());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let data = dir.path().join("data");
        run(
            &bin("initdb"),
            &[
                "-D",
                data.to_str().unwrap(),
                "--auth=trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
            ],
        );
        if !hba.is_empty() {
            let path = data.join("pg_hba.conf");
            let mut lines = std::fs::read_to_string(&path).unwrap();
            lines.push_str(hba);
            std::fs::write(&path, lines).unwrap();
        }
        let server = PgServer { dir, port, listen };
        server.ctl("start");
        server
    }

    fn ctl(&self, action: &str) {
        let data = self.dir.path().join("data");
        let options = format!(
            "-p {} -k {} -c listen_addresses='{}' -c fsync=off",
            self.port,
            self.dir.path().display(),
            self.listen
        );
        let log = self.dir.path().join("server.log");
        run(
            &bin("pg_ctl"),
            &[
                action,
                "-D",
                data.to_str().unwrap(),
                "-o",
                &options,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-m",
                "fast",
            ],
        );
    }

    /// Stops and starts the server again (fast shutdown: every session cut).
    pub fn restart(&self) {
        self.ctl("restart");
    }

    /// The URL of its `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let _ = command(&bin("pg_ctl"))
            .args(["stop", "-D", data.to_str().unwrap(), "-m", "immediate"])
            .output();
    }
}
