//! A `quire serve` (the real binary) for benchmarks: started on a data
//! dir, logging to a file there, waited for until it reports ready, and
//! killed when dropped.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Daemon {
    child: Child,
    pub data: PathBuf,
    /// `host:port` of the web page, when it was asked for.
    pub web: Option<String>,
}

impl Daemon {
    /// `quire serve --workers N` on `data`; with `web`, its web page on a
    /// free loopback port (else none).
    pub fn start(data: &Path, workers: usize, web: bool) -> Daemon {
        std::fs::create_dir_all(data).unwrap();
        let log = data.join("serve.log");
        let child = Command::new(env!("CARGO_BIN_EXE_quire"))
            .args(["serve", "--workers", &workers.to_string()])
            .args(["--http", if web { "127.0.0.1:0" } else { "" }])
            .env("QUIRE_DATA_DIR", data)
            .env("RUST_LOG", "info")
            .stderr(std::fs::File::create(&log).unwrap())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        let text = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("ready: ") {
                break text;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "quire serve did not start:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let web = text
            .split("web page on http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .map(str::to_owned);
        Daemon {
            child,
            data: data.to_owned(),
            web,
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
