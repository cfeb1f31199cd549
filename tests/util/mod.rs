//! Test helpers: a fresh data dir per test, the real `quire` binary, a daemon
//! that is killed when dropped, fixtures with known text, and waiting on
//! conditions with one shared timeout instead of sleeps.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod draw;
mod measure;
pub mod netns;
mod pdf;
pub mod pgserver;
pub mod variants;
pub use measure::*;
pub use pdf::*;

/// Makes each named `fn(Env)` two tests, one per engine, in a module of its
/// name: `NAME::sqlite` on a fresh data dir, `NAME::postgres` on a fresh
/// database of the test server.
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn sqlite() {
                    super::$name(crate::util::Env::new())
                }

                #[test]
                fn postgres() {
                    super::$name(crate::util::Env::postgres())
                }
            }
        )*
    };
}
pub(crate) use on_both_engines;

/// How long any condition may take before a test fails.
pub const TIMEOUT: Duration = Duration::from_secs(90);

/// The OCRmyPDF test corpus, kept in the repository (tests/corpus/README.md).
pub fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus/ocrmypdf")
        .join(name)
}

/// A temporary data dir and the settings every command of a test shares.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub extra: Vec<(String, String)>,
    /// The PostgreSQL database of a [`Env::postgres`] env, dropped with it.
    pub postgres: Option<quire::db::postgres::testing::TestDatabase>,
}

impl Env {
    pub fn new() -> Env {
        Env {
            dir: tempfile::tempdir().unwrap(),
            extra: vec![],
            postgres: None,
        }
    }

    /// An env whose commands keep their database in a fresh PostgreSQL
    /// database of the test server (`QUIRE_DATABASE_URL`), dropped at the end.
    pub fn postgres() -> Env {
        let database = quire::db::postgres::testing::TestDatabase::new();
        let url = database.url();
        let mut env = Env::new().set("QUIRE_DATABASE_URL", &url);
        env.postgres = Some(database);
        env
    }

    /// Sets a `QUIRE_*` variable for every command this env runs.
    pub fn set(mut self, k: &str, v: &str) -> Env {
        self.extra.push((k.into(), v.into()));
        self
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn inbox(&self) -> PathBuf {
        self.data().join("inbox")
    }

    /// A `quire` command on this data dir, with no user config file.
    pub fn cmd(&self) -> Command {
        self.cmd_via(&[])
    }

    /// [`Env::cmd`] run through `wrapper` (a program and its arguments,
    /// which then run quire: [`netns::Host::wrapper`]).
    pub fn cmd_via(&self, wrapper: &[String]) -> Command {
        let quire = env!("CARGO_BIN_EXE_quire");
        let mut c = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(quire);
                c
            }
            None => Command::new(quire),
        };
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("QUIRE_DATA_DIR", self.data())
            .env("RUST_LOG", "quire=debug")
            .env("QUIRE_WATCH_STABILITY_WINDOW", "300ms")
            .env("QUIRE_QUEUE_BACKOFF_BASE", "200ms")
            // Tests that want the web page ask for it (on port 0).
            .env("QUIRE_HTTP_LISTEN", "");
        for (k, v) in &self.extra {
            c.env(k, v);
        }
        c
    }

    /// Runs `quire ARGS` and returns its output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// Runs `quire ARGS`, asserts success, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "quire {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs `quire ARGS --json` and parses it.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        serde_json::from_str(&self.ok(&a)).unwrap()
    }

    /// Runs `quire search ARGS --json`: its hits, none when it exits 1
    /// (nothing matched, as grep does); any other failure fails the test.
    pub fn search(&self, args: &[&str]) -> Value {
        let out = self
            .cmd()
            .arg("search")
            .args(args)
            .arg("--json")
            .output()
            .unwrap();
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "quire search {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Starts `quire serve ARGS`, logging to a file in the temp dir.
    pub fn serve(&self, args: &[&str]) -> Daemon {
        self.serve_with(self.cmd(), args)
    }

    /// Starts `quire serve ARGS` on a test host of its own, reaching the
    /// database at `url` (the server's address as seen from that host).
    pub fn serve_on(&self, host: &netns::Host, url: &str, args: &[&str]) -> Daemon {
        let mut cmd = self.cmd_via(&host.wrapper());
        cmd.env("QUIRE_DATABASE_URL", url);
        self.serve_with(cmd, args)
    }

    fn serve_with(&self, mut cmd: Command, args: &[&str]) -> Daemon {
        let n = std::fs::read_dir(self.dir.path()).unwrap().count();
        let log = self.dir.path().join(format!("serve-{n}.log"));
        let child = cmd
            .arg("serve")
            .args(args)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let d = Daemon {
            child: Some(child),
            log,
        };
        wait_until("the daemon to start", || {
            // Logged once the inbox is watched, the workers run and the
            // scheduler is up: "started" came before the watch existed.
            d.log_contains("ready: ")
        });
        d
    }

    /// The data dir opened through quire's own API (queue and store), to
    /// check what the commands say against what is stored, on whichever
    /// database engine the data dir uses. Safe while daemons run.
    pub fn app(&self) -> quire::app::App {
        let mut config = quire::config::Config {
            data_dir: self.data(),
            ..Default::default()
        };
        if let Some(db) = &self.postgres {
            config.database.url = db.url();
        }
        quire::app::App::open_existing(&config).unwrap()
    }

    /// `QUIRE_DATA_DIR=<data dir>`, which every process of this env carries.
    pub fn env_entry(&self) -> Vec<u8> {
        format!("QUIRE_DATA_DIR={}", self.data().display()).into_bytes()
    }

    /// The documents, as `quire list --json`.
    pub fn docs(&self) -> Vec<Value> {
        self.json(&["list"]).as_array().unwrap().clone()
    }

    /// Waits until every document is indexed or failed; returns them.
    pub fn wait_settled(&self, expected: usize) -> Vec<Value> {
        let mut docs = vec![];
        wait_until(
            &format!("{expected} documents to be indexed or failed"),
            || {
                docs = self.docs();
                docs.len() == expected
                    && docs
                        .iter()
                        .all(|d| matches!(d["status"].as_str(), Some("indexed" | "failed")))
            },
        );
        docs
    }
}

/// A running daemon; killed (SIGKILL) if still running when dropped.
pub struct Daemon {
    pub child: Option<Child>,
    pub log: PathBuf,
}

impl Daemon {
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn log_contains(&self, s: &str) -> bool {
        self.log_text().contains(s)
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    /// Sends a signal.
    pub fn signal(&self, sig: i32) {
        unsafe { libc::kill(self.pid(), sig) };
    }

    /// Waits for the process to exit and returns its exit code.
    pub fn wait_exit(&mut self) -> Option<i32> {
        let mut child = self.child.take().unwrap();
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                start.elapsed() < TIMEOUT,
                "daemon did not exit; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL, and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `cond` every 20 ms until it holds; fails the test after [`TIMEOUT`].
pub fn wait_until(what: &str, cond: impl FnMut() -> bool) {
    wait_within(what, TIMEOUT, cond)
}

/// Polls `cond` every 20 ms until it holds; fails the test after `limit`.
pub fn wait_within(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Live processes (zombies excluded) whose environment holds `entry`
/// (`NAME=value`): a test's daemons and their OCR children, found by the
/// data dir they were given.
pub fn processes_with_env(entry: &[u8]) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|kv| kv == entry))
        })
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
        })
        .collect()
}

/// Writes a 300-DPI PNG showing `lines` in DejaVu Sans (ImageMagick).
pub fn text_png(path: &Path, lines: &[&str]) {
    let height = 200 + 110 * lines.len() as u32;
    draw::text_page(path, (2550, height), (100, 150), 110, lines);
}

/// Writes an LZW TIFF of `pages` pages at 200 DPI, page N saying
/// "tiff page number N" (ImageMagick; the page images go beside it).
pub fn tiff_pages(path: &Path, pages: usize) {
    let dir = path.parent().unwrap();
    let pngs: Vec<PathBuf> = (1..=pages)
        .map(|n| {
            let png = dir.join(format!("tiff-page-{n}.png"));
            draw::text_page(
                &png,
                (1700, 700),
                (100, 150),
                110,
                &[&format!("tiff page number {n}")],
            );
            png
        })
        .collect();
    let ok = Command::new("convert")
        .args(&pngs)
        .args([
            "-units",
            "PixelsPerInch",
            "-density",
            "200",
            "-compress",
            "lzw",
        ])
        .arg(path)
        .status()
        .unwrap();
    assert!(ok.success(), "convert could not write {}", path.display());
}

/// Writes a PDF of `pages` scanned pages (300-DPI JPEG scans of a few lines
/// of known text each): a document that takes the OCR a few seconds a page,
/// for tests that stop a daemon part-way through one.
pub fn scanned_pdf(path: &Path, pages: usize) {
    let dir = path.parent().unwrap();
    let scans: Vec<PdfPage> = (1..=pages)
        .map(|n| {
            let line = format!("scanned page number {n:03} of the long document");
            PdfPage::Scan(scan(dir, &[&line, "with a second line of words"], true))
        })
        .collect();
    write_pdf(path, &scans);
}

/// Renders `lines` like [`text_png`] and encodes the image as JPEG
/// (`jpeg = true`) or Flate-compressed grey samples.
pub fn scan(dir: &Path, lines: &[&str], jpeg: bool) -> Scan {
    let png = dir.join(format!("scan-{}.png", lines.join(" ").len()));
    text_png(&png, lines);
    let size = Command::new("identify")
        .args(["-format", "%w %h"])
        .arg(&png)
        .output()
        .unwrap();
    let size = String::from_utf8(size.stdout).unwrap();
    let (w, h) = size.trim().split_once(' ').unwrap();
    let (width, height) = (w.parse().unwrap(), h.parse().unwrap());
    let out = dir.join("scan.out");
    let target = if jpeg {
        format!("jpeg:{}", out.display())
    } else {
        format!("gray:{}", out.display())
    };
    let ok = Command::new("convert")
        .arg(&png)
        .args(["-colorspace", "Gray", "-depth", "8", "-quality", "92"])
        .arg(target)
        .status()
        .unwrap();
    assert!(ok.success());
    let raw = std::fs::read(&out).unwrap();
    let (filter, data) = if jpeg {
        ("/DCTDecode", raw)
    } else {
        use std::io::Write;
        let mut z = flate2::write::ZlibEncoder::new(vec![], flate2::Compression::fast());
        z.write_all(&raw).unwrap();
        ("/FlateDecode", z.finish().unwrap())
    };
    Scan {
        width,
        height,
        filter,
        data,
    }
}
