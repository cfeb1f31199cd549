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

/// Makes a self-signed certificate for `localhost` (and no IP address) and
/// its key in `data`, for the server's `ssl_cert_file`/`ssl_key_file`.
fn make_certificate(data: &Path) {
    let status = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
        ])
        .arg("-keyout")
        .arg(data.join("server.key"))
        .arg("-out")
        .arg(data.join("server.crt"))
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl (scripts/setup.sh --test installs it)");
    assert!(status.success(), "openssl req failed");
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
        PgServer::create("127.0.0.1", "", false)
    }

    /// A server that also listens on every address and trusts `postgres`
    /// from `10.0.0.0/8`: the test hosts of [`super::netns`] reach it over
    /// their veth links.
    pub fn start_for_hosts() -> PgServer {
        PgServer::create("*", "host all postgres 10.0.0.0/8 trust\n", false)
    }

    /// A server on `127.0.0.1` that offers TLS with a self-signed
    /// certificate for `localhost`, [`PgServer::certificate`].
    pub fn start_with_tls() -> PgServer {
        PgServer::create("127.0.0.1", "", true)
    }

    /// The TLS server's certificate, which is its own CA.
    pub fn certificate(&self) -> PathBuf {
        self.dir.path().join("data").join("server.crt")
    }

    /// `hba` is appended to `pg_hba.conf`; `tls` turns TLS on.
    fn create(listen: &'static str, hba: &str, tls: bool) -> PgServer {
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
        if tls {
            make_certificate(&data);
            // The server refuses a key others can read.
            use std::os::unix::fs::PermissionsExt;
            let key = data.join("server.key");
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
            if unsafe { libc::geteuid() } == 0 {
                let status = Command::new("chown")
                    .args(["postgres:postgres"])
                    .arg(data.join("server.key"))
                    .arg(data.join("server.crt"))
                    .status()
                    .unwrap();
                assert!(status.success());
            }
            let path = data.join("postgresql.conf");
            let mut conf = std::fs::read_to_string(&path).unwrap();
            conf.push_str("ssl = on\n");
            std::fs::write(&path, conf).unwrap();
        }
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
