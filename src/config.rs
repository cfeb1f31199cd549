//! Configuration: one plain [`Config`] resolved once from, in order of
//! precedence, command-line flags, `QUIRE_*` environment variables, the TOML
//! file, and the defaults (all of which live in this file).
//!
//! Every key of the file can also be set by environment: a top-level key `k` as
//! `QUIRE_K`, a key `k` of section `s` as `QUIRE_S_K` (for example
//! `QUIRE_QUEUE_MAX_ATTEMPTS=5`). Values in the environment are parsed as TOML
//! values, falling back to a plain string.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

mod duration;

pub use duration::Dur;

/// The example configuration shipped with quire: every key, its default and
/// what it does (the man page's ENVIRONMENT section is made from it).
pub const EXAMPLE: &str = include_str!("../config.example.toml");

/// Everything quire can be told, with its defaults.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Holds `quire.db`, `inbox/`, `originals/` and `duplicates/`.
    pub data_dir: PathBuf,
    /// The watched folder; empty means `<data_dir>/inbox`.
    pub inbox: PathBuf,
    pub queue: QueueConfig,
    pub scheduler: SchedulerConfig,
    pub watch: WatchConfig,
    pub ocr: OcrConfig,
    pub index: IndexConfig,
    pub output: OutputConfig,
}

/// `[queue]`: the workers and the retry policy.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// False makes `serve` ingest only, running no workers.
    pub enabled: bool,
    /// Worker threads; 0 means one per CPU core.
    pub workers: usize,
    /// How often idle workers look for work enqueued by other processes.
    pub poll_interval: Dur,
    /// How often a busy worker tells the queue it is alive.
    pub heartbeat_interval: Dur,
    /// A claim with no heartbeat for this long is released.
    pub stale_timeout: Dur,
    /// Attempts before a task fails for good.
    pub max_attempts: i64,
    /// First retry delay, doubled each attempt, plus jitter.
    pub backoff_base: Dur,
    /// Longest retry delay.
    pub backoff_max: Dur,
    /// How long a stopping daemon lets running tasks finish before releasing them.
    pub shutdown_timeout: Dur,
}

/// `[scheduler]`: periodic maintenance.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerConfig {
    /// Interval between maintenance runs (stale claims, orphans, purge, summary).
    pub check_interval: Dur,
    /// Completed and cancelled tasks older than this are deleted.
    pub retention: Dur,
}

/// How the inbox is watched.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum WatchMode {
    /// inotify (or the platform's equivalent): instant.
    Notify,
    /// Poll sizes and mtimes: for NFS and SMB shares, where inotify sees nothing.
    Poll,
}

/// `[watch]`: the inbox watcher.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WatchConfig {
    pub mode: WatchMode,
    /// In poll mode, how often the inbox is scanned.
    pub poll_interval: Dur,
    /// A file whose size and mtime have not changed for this long is complete
    /// (poll mode, and files found by a scan rather than a close event).
    pub stability_window: Dur,
    /// A full rescan of the inbox, as a safety net for missed events.
    pub rescan_interval: Dur,
    /// Glob patterns (`*`, `?`) of file names left alone; hidden files always are.
    pub ignore: Vec<String>,
}

/// How PDF pages get their text.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum OcrMode {
    /// The text layer where a page has one, OCR otherwise.
    Auto,
    /// OCR every page.
    Force,
    /// Never OCR; pages without a text layer stay empty.
    TextOnly,
}

/// `[ocr]`: text extraction.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OcrConfig {
    /// Tesseract languages, combined as `eng+deu`.
    pub languages: Vec<String>,
    pub mode: OcrMode,
    /// Resolution assumed for images that carry none.
    pub default_dpi: u32,
    /// Pages with more pixels than this fail (pixel bombs).
    pub max_pixels: u64,
    /// Documents with more pages than this fail.
    pub max_pages: u32,
    /// A page taking longer than this fails.
    pub page_timeout: Dur,
    /// A worker's OCR child (and its tesseract engine) is replaced after this many pages.
    pub engine_recycle_pages: u32,
    /// Address-space limit of each OCR child in MiB (0: none); a page needing
    /// more fails instead of exhausting the machine.
    pub max_memory_mb: u64,
    /// Render pages with poppler's `pdftoppm` when their images can't be decoded.
    pub pdftoppm: bool,
}

/// `[index]`: full-text search.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct IndexConfig {
    /// Pages written to the index per transaction.
    pub batch_pages: usize,
    /// Word stemming in the index; changing it rebuilds the index at the next start.
    pub stemming: Stemming,
}

/// `[output]`: what quire hands back for each document.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OutputConfig {
    /// Where searchable PDFs go; empty means `<data_dir>/output`.
    pub dir: PathBuf,
    /// Write a searchable PDF for every document read.
    pub searchable_pdf: bool,
    /// Also write the text beside each PDF, as `.txt`.
    pub sidecar_text: bool,
}

/// How words are reduced before indexing and searching.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Stemming {
    /// Words are matched as written (accents and case aside).
    None,
    /// English Porter stemming: `running` finds `runs` and `run`.
    Porter,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: default_data_dir(),
            inbox: PathBuf::new(),
            queue: QueueConfig::default(),
            scheduler: SchedulerConfig::default(),
            watch: WatchConfig::default(),
            ocr: OcrConfig::default(),
            index: IndexConfig::default(),
            output: OutputConfig::default(),
        }
    }
}

impl Default for OutputConfig {
    fn default() -> Self {
        OutputConfig {
            dir: PathBuf::new(),
            searchable_pdf: true,
            sidecar_text: false,
        }
    }
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            enabled: true,
            workers: 0,
            poll_interval: Dur::secs(1),
            heartbeat_interval: Dur::secs(10),
            stale_timeout: Dur::secs(120),
            max_attempts: 3,
            backoff_base: Dur::secs(10),
            backoff_max: Dur::secs(3600),
            shutdown_timeout: Dur::secs(30),
        }
    }
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            check_interval: Dur::secs(300),
            retention: Dur::secs(7 * 24 * 3600),
        }
    }
}

impl Default for WatchConfig {
    fn default() -> Self {
        WatchConfig {
            mode: WatchMode::Notify,
            poll_interval: Dur::secs(2),
            stability_window: Dur::secs(2),
            rescan_interval: Dur::secs(300),
            ignore: [
                "*.part",
                "*.partial",
                "*.crdownload",
                "*.download",
                "*.tmp",
                "*.temp",
                "*.swp",
                "~$*",
                "~*",
                ".~lock.*",
                "Thumbs.db",
                "desktop.ini",
                ".DS_Store",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

impl Default for OcrConfig {
    fn default() -> Self {
        OcrConfig {
            languages: vec!["eng".into()],
            mode: OcrMode::Auto,
            default_dpi: 300,
            max_pixels: 100_000_000,
            max_pages: 5_000,
            page_timeout: Dur::secs(180),
            engine_recycle_pages: 200,
            max_memory_mb: 4096,
            pdftoppm: true,
        }
    }
}

impl Default for IndexConfig {
    fn default() -> Self {
        IndexConfig {
            batch_pages: 200,
            stemming: Stemming::None,
        }
    }
}

/// A configuration that could not be read; the message names the file and key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("bad config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("bad environment variable {var}: {message}")]
    Env { var: String, message: String },
    #[error("bad configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Loads the configuration: `file` if given (it must exist), else the first
    /// of `$QUIRE_CONFIG`, `$XDG_CONFIG_HOME/quire/config.toml`,
    /// `~/.config/quire/config.toml`, `/etc/quire/config.toml` that exists, else
    /// none; then the `QUIRE_*` variables of `env` on top.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = env.into_iter().collect();
        let path = match file {
            Some(p) => Some(p.to_path_buf()),
            None => default_config_file(&env),
        };
        let mut table = match &path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.clone(),
                    source,
                })?;
                text.parse::<toml::Table>()
                    .map_err(|e| ConfigError::Parse {
                        path: p.clone(),
                        message: e.to_string(),
                    })?
            }
            None => toml::Table::new(),
        };
        overlay_env(&mut table, &env)?;
        let origin = path
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "(defaults and environment)".into());
        let config: Config = table
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Parse {
                path: PathBuf::from(&origin),
                message: e.to_string(),
            })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values serde cannot: ranges and relations between keys.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(m.into()));
        if self.queue.max_attempts < 1 {
            return bad("queue.max_attempts must be at least 1");
        }
        if self.queue.heartbeat_interval.0 >= self.queue.stale_timeout.0 {
            return bad("queue.heartbeat_interval must be shorter than queue.stale_timeout");
        }
        if self.queue.poll_interval.0.is_zero() || self.scheduler.check_interval.0.is_zero() {
            return bad("queue.poll_interval and scheduler.check_interval must be above zero");
        }
        if self.ocr.languages.is_empty() {
            return bad("ocr.languages must name at least one language, e.g. [\"eng\"]");
        }
        if self.index.batch_pages == 0 {
            return bad("index.batch_pages must be at least 1");
        }
        Ok(())
    }

    /// The inbox folder.
    pub fn inbox_dir(&self) -> PathBuf {
        if self.inbox.as_os_str().is_empty() {
            self.data_dir.join("inbox")
        } else {
            self.inbox.clone()
        }
    }

    /// The folder searchable PDFs are written to.
    pub fn output_dir(&self) -> PathBuf {
        if self.output.dir.as_os_str().is_empty() {
            self.data_dir.join("output")
        } else {
            self.output.dir.clone()
        }
    }

    /// The database file.
    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("quire.db")
    }

    /// Worker threads to run: the configured number, or one per core.
    pub fn worker_count(&self) -> usize {
        match self.queue.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }

    /// Every environment variable the configuration reads, with its key.
    pub fn env_vars() -> Vec<(String, String)> {
        let defaults = toml::Table::try_from(Config::default()).expect("config serializes");
        let mut out = vec![("QUIRE_CONFIG".into(), "the config file".into())];
        for (key, value) in &defaults {
            match value.as_table() {
                Some(section) => {
                    for k in section.keys() {
                        out.push((env_name(Some(key), k), format!("{key}.{k}")));
                    }
                }
                None => out.push((env_name(None, key), key.clone())),
            }
        }
        out
    }
}

/// `QUIRE_SECTION_KEY` or `QUIRE_KEY`.
fn env_name(section: Option<&str>, key: &str) -> String {
    match section {
        Some(s) => format!("QUIRE_{}_{}", s, key).to_uppercase(),
        None => format!("QUIRE_{key}").to_uppercase(),
    }
}

/// Sets every key that has a `QUIRE_*` variable in `env` into `table`.
fn overlay_env(table: &mut toml::Table, env: &[(String, String)]) -> Result<(), ConfigError> {
    let defaults = toml::Table::try_from(Config::default()).expect("config serializes");
    let lookup = |name: &str| {
        env.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    for (key, value) in &defaults {
        match value.as_table() {
            Some(section) => {
                for (k, default) in section {
                    let var = env_name(Some(key), k);
                    if let Some(raw) = lookup(&var) {
                        let v = env_value(&var, &raw, default)?;
                        table
                            .entry(key.clone())
                            .or_insert_with(|| toml::Value::Table(Default::default()))
                            .as_table_mut()
                            .ok_or_else(|| ConfigError::Invalid(format!("{key} must be a table")))?
                            .insert(k.clone(), v);
                    }
                }
            }
            None => {
                let var = env_name(None, key);
                if let Some(raw) = lookup(&var) {
                    table.insert(key.clone(), env_value(&var, &raw, value)?);
                }
            }
        }
    }
    Ok(())
}

/// Parses an environment value as the type of `default`: strings stay strings,
/// anything else is read as a TOML value.
fn env_value(var: &str, raw: &str, default: &toml::Value) -> Result<toml::Value, ConfigError> {
    if default.is_str() {
        return Ok(toml::Value::String(raw.into()));
    }
    let doc = format!("v = {raw}");
    let parsed: toml::Table = doc.parse().map_err(|e: toml::de::Error| ConfigError::Env {
        var: var.into(),
        message: format!("{raw:?} is not a valid value: {}", e.message()),
    })?;
    Ok(parsed["v"].clone())
}

/// The default config file, if one exists.
fn default_config_file(env: &[(String, String)]) -> Option<PathBuf> {
    let get = |k: &str| {
        env.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| PathBuf::from(v))
    };
    if let Some(p) = get("QUIRE_CONFIG") {
        return Some(p);
    }
    let candidates = [
        get("XDG_CONFIG_HOME").map(|d| d.join("quire/config.toml")),
        get("HOME").map(|h| h.join(".config/quire/config.toml")),
        Some(PathBuf::from("/etc/quire/config.toml")),
    ];
    candidates.into_iter().flatten().find(|p| p.is_file())
}

/// The default data dir: systemd's `$STATE_DIRECTORY`, else `$XDG_DATA_HOME/quire`,
/// else `~/.local/share/quire`, else `./quire-data`.
pub fn default_data_dir() -> PathBuf {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(state) = var("STATE_DIRECTORY") {
        // systemd may pass several, colon-separated; the first is ours.
        let first = state
            .to_string_lossy()
            .split(':')
            .next()
            .unwrap_or_default()
            .to_string();
        return PathBuf::from(first);
    }
    if let Some(d) = var("XDG_DATA_HOME") {
        return d.join("quire");
    }
    if let Some(h) = var("HOME") {
        return h.join(".local/share/quire");
    }
    PathBuf::from("quire-data")
}

impl QueueConfig {
    /// Heartbeat interval as a `Duration`.
    pub fn heartbeat(&self) -> Duration {
        self.heartbeat_interval.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_work_with_no_file() {
        let c = Config::load(None, env(&[("HOME", "/nonexistent")])).unwrap();
        assert_eq!(c.queue.max_attempts, 3);
        assert_eq!(c.scheduler.check_interval, Dur::secs(300));
    }

    #[test]
    fn env_overrides_file_and_file_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(
            &p,
            "data_dir = \"/from/file\"\n[queue]\nmax_attempts = 7\nworkers = 3\n",
        )
        .unwrap();
        let c = Config::load(
            Some(&p),
            env(&[
                ("QUIRE_QUEUE_WORKERS", "5"),
                ("QUIRE_OCR_LANGUAGES", "[\"eng\", \"deu\"]"),
            ]),
        )
        .unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/from/file"));
        assert_eq!(c.queue.max_attempts, 7);
        assert_eq!(c.queue.workers, 5);
        assert_eq!(c.ocr.languages, vec!["eng", "deu"]);
        let c = Config::load(
            Some(&p),
            env(&[
                ("QUIRE_DATA_DIR", "/from/env"),
                ("QUIRE_QUEUE_POLL_INTERVAL", "250ms"),
            ]),
        )
        .unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/from/env"));
        assert_eq!(c.queue.poll_interval, Dur(Duration::from_millis(250)));
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "[queue]\nmax_atempts = 7\n").unwrap();
        let e = Config::load(Some(&p), env(&[])).unwrap_err().to_string();
        assert!(e.contains("max_atempts") && e.contains("c.toml"), "{e}");
        std::fs::write(&p, "[queue]\nstale_timeout = \"soon\"\n").unwrap();
        let e = Config::load(Some(&p), env(&[])).unwrap_err().to_string();
        assert!(e.contains("stale_timeout") && e.contains("soon"), "{e}");
        let e = Config::load(
            None,
            env(&[("HOME", "/x"), ("QUIRE_QUEUE_WORKERS", "many")]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("QUIRE_QUEUE_WORKERS"), "{e}");
        std::fs::write(&p, "[queue]\nmax_attempts = 0\n").unwrap();
        let e = Config::load(Some(&p), env(&[])).unwrap_err().to_string();
        assert!(e.contains("max_attempts"), "{e}");
    }

    #[test]
    fn a_missing_named_file_is_an_error() {
        let e = Config::load(Some(Path::new("/no/such/quire.toml")), env(&[])).unwrap_err();
        assert!(e.to_string().contains("/no/such/quire.toml"));
    }

    #[test]
    fn the_example_config_is_the_defaults() {
        let text = EXAMPLE;
        let table: toml::Table = text.parse().unwrap();
        let mut from_example: Config = table.try_into().unwrap();
        let defaults = Config::default();
        // The example shows data_dir as a placeholder path.
        from_example.data_dir = defaults.data_dir.clone();
        assert_eq!(from_example, defaults);
    }
}
