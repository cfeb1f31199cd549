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
    pub http: HttpConfig,
    pub database: DatabaseConfig,
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
    /// How long an OCR task reads before it lets a waiting task of the same
    /// or a higher priority go first, when every worker is busy (it resumes
    /// at its next unread page).
    pub time_slice: Dur,
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
    /// Remove subfolders of the inbox once every file in them is taken (what
    /// a folder drop leaves). Off for scanners or shares that write into
    /// subfolders of their own.
    pub remove_emptied_folders: bool,
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

/// `[http]`: the web page, the JSON API and the metrics `serve` offers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address and port to listen on (`localhost:PORT` is 127.0.0.1);
    /// empty turns the web page off.
    pub listen: String,
    /// A file holding the access token (bearer token, or the password of
    /// HTTP basic auth); required to listen beyond loopback.
    pub token_file: PathBuf,
    /// Largest upload accepted, in MiB.
    pub upload_limit_mb: u64,
}

/// `[database]`: where quire keeps its queue, documents and index.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// Empty: the SQLite file `quire.db` in the data dir. A
    /// `postgres://user@host:port/dbname` URL (also `postgresql://`): that
    /// PostgreSQL database, which many daemons on many hosts can share.
    pub url: String,
    /// A file whose first line is the PostgreSQL password, when the URL has
    /// none (else `PGPASSWORD`); works with systemd credentials.
    pub password_file: PathBuf,
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
            database: DatabaseConfig::default(),
            http: HttpConfig::default(),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: "127.0.0.1:8484".into(),
            token_file: PathBuf::new(),
            upload_limit_mb: 512,
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
            time_slice: Dur::secs(30),
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
            remove_emptied_folders: true,
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
    #[error("cannot read the config file {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("bad config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
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
                let text = std::fs::read_to_string(p).map_err(|error| ConfigError::Read {
                    path: p.clone(),
                    error,
                })?;
                // The parser's message quotes the offending line, which may
                // be a database.url with its password: say where, not what.
                text.parse::<toml::Table>()
                    .map_err(|e| ConfigError::Parse {
                        path: p.clone(),
                        message: match e.span() {
                            Some(span) => format!(
                                "line {}: {}",
                                text[..span.start].matches('\n').count() + 1,
                                e.message().trim()
                            ),
                            None => e.message().trim().to_owned(),
                        },
                    })?
            }
            None => toml::Table::new(),
        };
        let origin = path
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "(defaults and environment)".into());
        // Every problem at once, the file's and the environment's, so that
        // fixing a configuration takes one round.
        let mut problems = check_table(&table);
        problems.extend(overlay_env(&mut table, &env));
        if !problems.is_empty() {
            return Err(ConfigError::Parse {
                path: PathBuf::from(&origin),
                message: problems.join("; "),
            });
        }
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
        if self.http_addr().is_err() {
            return bad(
                "http.listen must be an address and port such as 127.0.0.1:8484, localhost:8484 \
                 or [::1]:8484, or empty to turn the web page off",
            );
        }
        let inbox = std::path::absolute(self.inbox_dir()).unwrap_or_else(|_| self.inbox_dir());
        if self.output.searchable_pdf && self.output_dir().starts_with(&inbox) {
            return bad(
                "output.dir is inside the inbox: every PDF written there would be taken as a new \
                 document; choose a folder outside it",
            );
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

    /// The folder searchable PDFs are written to, absolute (a relative
    /// `output.dir` is taken from the current folder, once).
    pub fn output_dir(&self) -> PathBuf {
        let dir = if self.output.dir.as_os_str().is_empty() {
            self.data_dir.join("output")
        } else {
            self.output.dir.clone()
        };
        std::path::absolute(&dir).unwrap_or(dir)
    }

    /// The address the web page listens on; `None` when it is off.
    pub fn http_addr(&self) -> Result<Option<std::net::SocketAddr>, std::net::AddrParseError> {
        let listen = self.http.listen.trim();
        if listen.is_empty() {
            return Ok(None);
        }
        // `localhost` is what people write. It means IPv4 loopback here, as
        // the default does, not whatever the resolver lists first.
        if let Some(port) = listen.strip_prefix("localhost:") {
            return format!("127.0.0.1:{port}").parse().map(Some);
        }
        listen.parse().map(Some)
    }

    /// The database file.
    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("quire.db")
    }

    /// Where the database is: the SQLite file in the data dir, or the
    /// PostgreSQL database `database.url` names (its password resolved).
    pub fn location(&self) -> Result<crate::db::Location, crate::db::postgres::TargetError> {
        let db = &self.database;
        if db.url.is_empty() {
            return Ok(crate::db::Location::Sqlite(self.db_path()));
        }
        let password_file =
            (!db.password_file.as_os_str().is_empty()).then_some(db.password_file.as_path());
        let target =
            crate::db::postgres::Target::parse(&db.url, password_file, |k| std::env::var(k).ok())?;
        Ok(crate::db::Location::Postgres(target))
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

/// The problems of a configuration file's table: unknown sections and keys
/// (with the closest known one) and values of the wrong type, each found by
/// reading the defaults with that one value set.
fn check_table(table: &toml::Table) -> Vec<String> {
    let defaults = toml::Table::try_from(Config::default()).expect("config serializes");
    let mut unknown = vec![];
    let mut wrong = vec![];
    let mut check_value = |path: &str, section: Option<&str>, key: &str, value: &toml::Value| {
        if let Err(e) = check_one(section, key, value) {
            wrong.push(format!("{path}: {e}"));
        }
    };
    for (key, value) in table {
        match (defaults.get(key), value) {
            (None, _) => {
                let known: Vec<&str> = defaults.keys().map(String::as_str).collect();
                unknown.push(unknown_key(key, &known));
            }
            (Some(toml::Value::Table(section)), toml::Value::Table(given)) => {
                for (k, v) in given {
                    if section.contains_key(k) {
                        check_value(&format!("{key}.{k}"), Some(key), k, v);
                    } else {
                        let known: Vec<String> =
                            section.keys().map(|s| format!("{key}.{s}")).collect();
                        let known: Vec<&str> = known.iter().map(String::as_str).collect();
                        unknown.push(unknown_key(&format!("{key}.{k}"), &known));
                    }
                }
            }
            (Some(toml::Value::Table(_)), _) => unknown.push(format!(
                "{key} is a section: write it as [{key}] with its keys below"
            )),
            (Some(_), v) => check_value(key, None, key, v),
        }
    }
    unknown.extend(wrong);
    unknown
}

/// Whether `value` fits `key` (of `section`): the defaults read with it set.
fn check_one(section: Option<&str>, key: &str, value: &toml::Value) -> Result<(), String> {
    let mut trial = toml::Table::new();
    trial.insert(key.into(), value.clone());
    if let Some(s) = section {
        trial = toml::Table::from_iter([(s.to_owned(), toml::Value::Table(trial))]);
    }
    match trial.try_into::<Config>() {
        Ok(_) => Ok(()),
        Err(e) => Err(e.message().trim().to_owned()),
    }
}

/// "unknown key `k`", with the closest of `known` when one is close.
fn unknown_key(key: &str, known: &[&str]) -> String {
    match closest(key, known) {
        Some(c) => format!("unknown key `{key}`; did you mean `{c}`?"),
        None => format!("unknown key `{key}`; the keys are {}", known.join(", ")),
    }
}

/// The candidate closest to `name` by edit distance (case aside), if it is
/// close enough to be a typo: at most a third of the name's letters, and 3.
fn closest<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let distance = |a: &str, b: &str| {
        let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
        let mut prev: Vec<usize> = (0..=b.len()).collect();
        for i in 1..=a.len() {
            let mut cur = vec![i; b.len() + 1];
            for j in 1..=b.len() {
                let sub = prev[j - 1] + usize::from(!a[i - 1].eq_ignore_ascii_case(&b[j - 1]));
                cur[j] = sub.min(prev[j] + 1).min(cur[j - 1] + 1);
            }
            prev = cur;
        }
        prev[b.len()]
    };
    let limit = (name.len() / 3).clamp(1, 3);
    candidates
        .iter()
        .map(|c| (distance(name, c), *c))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, c)| c)
}

/// Sets every key that has a `QUIRE_*` variable in `env` into `table`;
/// returns the problems: values that do not parse, and `QUIRE_*` variables
/// that name no key (a typo: named with the closest variable there is).
fn overlay_env(table: &mut toml::Table, env: &[(String, String)]) -> Vec<String> {
    let mut problems = vec![];
    let known: Vec<String> = Config::env_vars().into_iter().map(|(v, _)| v).collect();
    let known: Vec<&str> = known.iter().map(String::as_str).collect();
    // QUIRE_TEST_* and QUIRE_BENCH_* belong to quire's own tests and
    // benchmarks, which run this binary with their environment.
    let ours = |v: &str| v.starts_with("QUIRE_TEST_") || v.starts_with("QUIRE_BENCH_");
    for (var, _) in env {
        if var.starts_with("QUIRE_") && !known.contains(&var.as_str()) && !ours(var) {
            problems.push(match closest(var, &known) {
                Some(c) => format!("unknown environment variable {var}; did you mean {c}?"),
                None => format!(
                    "unknown environment variable {var}; `man quire` lists the QUIRE_* variables"
                ),
            });
        }
    }
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
                    let Some(raw) = lookup(&var) else { continue };
                    let value = env_value(&var, &raw, default).and_then(|v| {
                        check_one(Some(key), k, &v)
                            .map_err(|e| format!("{var}={}: {e}", shown(var.as_str(), &raw)))?;
                        Ok(v)
                    });
                    match value {
                        Ok(v) => {
                            let section = table
                                .entry(key.clone())
                                .or_insert_with(|| toml::Value::Table(Default::default()));
                            if let Some(section) = section.as_table_mut() {
                                section.insert(k.clone(), v);
                            }
                        }
                        Err(e) => problems.push(e),
                    }
                }
            }
            None => {
                let var = env_name(None, key);
                if let Some(raw) = lookup(&var) {
                    let checked = env_value(&var, &raw, value).and_then(|v| {
                        check_one(None, key, &v)
                            .map_err(|e| format!("{var}={}: {e}", shown(var.as_str(), &raw)))?;
                        Ok(v)
                    });
                    match checked {
                        Ok(v) => {
                            table.insert(key.clone(), v);
                        }
                        Err(e) => problems.push(e),
                    }
                }
            }
        }
    }
    problems
}

/// An environment value as error messages show it: quoted, but a URL
/// (`QUIRE_DATABASE_URL`) not at all, since it may hold a password.
fn shown(var: &str, raw: &str) -> String {
    if var.ends_with("_URL") {
        "(not shown: it may hold a password)".into()
    } else {
        format!("{raw:?}")
    }
}

/// Reads an environment value as the type of `default`, written plainly
/// (`eng`, `4`, `true`, `eng,deu` for a list) or in TOML (`"eng"`,
/// `["eng", "deu"]`).
fn env_value(var: &str, raw: &str, default: &toml::Value) -> Result<toml::Value, String> {
    let toml_value = |text: &str| {
        format!("v = {text}")
            .parse::<toml::Table>()
            .map(|t| t["v"].clone())
            .map_err(|e| {
                format!(
                    "{var}={} is not a valid value: {}",
                    shown(var, raw),
                    e.message().trim()
                )
            })
    };
    let string = |text: &str| {
        let t = text.trim();
        let quoted = t.len() >= 2
            && ((t.starts_with('"') && t.ends_with('"'))
                || (t.starts_with('\'') && t.ends_with('\'')));
        if quoted {
            toml_value(t)
        } else {
            Ok(toml::Value::String(t.to_owned()))
        }
    };
    match default {
        toml::Value::String(_) => string(raw),
        toml::Value::Array(items) if !raw.trim_start().starts_with('[') => {
            let strings = items.first().is_none_or(toml::Value::is_str);
            raw.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| if strings { string(p) } else { toml_value(p) })
                .collect::<Result<Vec<_>, _>>()
                .map(toml::Value::Array)
        }
        _ => toml_value(raw.trim()),
    }
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
    fn a_config_file_error_names_the_line_and_never_shows_a_password() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.toml");
        std::fs::write(&file, "[database]\nurl = \"postgres://u:s3cr\\qet@h/d\"\n").unwrap();
        let err = Config::load(Some(&file), vec![("HOME".into(), "/x".into())])
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2"), "{err}");
        assert!(!err.contains("s3cr"), "{err}");
    }

    #[test]
    fn the_database_is_the_sqlite_file_unless_a_postgres_url_is_set() {
        let mut c = Config::default();
        assert_eq!(
            c.location().unwrap(),
            crate::db::Location::Sqlite(c.data_dir.join("quire.db"))
        );
        c.database.url = "postgresql://quire:pw@db:6543/archive".into();
        let location = c.location().unwrap();
        assert_eq!(location.to_string(), "postgres://quire@db:6543/archive");
        c.database.url = "sqlite:///var/lib/quire.db".into();
        let err = c.location().unwrap_err().to_string();
        assert!(err.contains("leave it empty for SQLite"), "{err}");
    }

    #[test]
    fn defaults_work_with_no_file() {
        let c = Config::load(None, env(&[("HOME", "/nonexistent")])).unwrap();
        assert_eq!(c.queue.max_attempts, 3);
        assert_eq!(c.scheduler.check_interval, Dur::secs(300));
    }

    #[test]
    fn http_listen_takes_addresses_and_localhost() {
        let listen = |v: &str| {
            Config::load(
                None,
                env(&[("HOME", "/nonexistent"), ("QUIRE_HTTP_LISTEN", v)]),
            )
            .map(|c| c.http_addr().unwrap().map(|a| a.to_string()))
        };
        assert_eq!(listen("").unwrap(), None);
        assert_eq!(
            listen("localhost:9000").unwrap().as_deref(),
            Some("127.0.0.1:9000")
        );
        assert_eq!(listen("[::1]:9000").unwrap().as_deref(), Some("[::1]:9000"));
        for bad in ["localhost", "localhost:http", "example.org:80", "9000"] {
            let e = listen(bad).unwrap_err().to_string();
            assert!(e.contains("localhost:8484"), "{bad}: {e}");
        }
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
    fn env_values_may_be_plain_or_toml() {
        let load = |pairs: &[(&str, &str)]| Config::load(None, env(pairs));
        for (raw, want) in [
            ("eng", vec!["eng"]),
            ("\"eng\"", vec!["eng"]),
            ("eng,deu", vec!["eng", "deu"]),
            (" eng , deu ", vec!["eng", "deu"]),
            ("[\"eng\", \"deu\"]", vec!["eng", "deu"]),
        ] {
            let c = load(&[("HOME", "/x"), ("QUIRE_OCR_LANGUAGES", raw)]).unwrap();
            assert_eq!(c.ocr.languages, want, "{raw}");
        }
        let c = load(&[
            ("HOME", "/x"),
            ("QUIRE_OCR_MODE", "force"),
            ("QUIRE_QUEUE_WORKERS", "4"),
        ]);
        let c = c.unwrap();
        assert_eq!((c.ocr.mode, c.queue.workers), (OcrMode::Force, 4));
        let c = load(&[("HOME", "/x"), ("QUIRE_OUTPUT_SIDECAR_TEXT", "true")]).unwrap();
        assert!(c.output.sidecar_text);
    }

    #[test]
    fn a_misspelt_variable_is_an_error_naming_the_closest() {
        let e = Config::load(None, env(&[("HOME", "/x"), ("QUIRE_QEUE_WORKERS", "4")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("QUIRE_QEUE_WORKERS") && e.contains("did you mean QUIRE_QUEUE_WORKERS"),
            "{e}"
        );
        // Other programs' variables are none of quire's business.
        assert!(Config::load(None, env(&[("HOME", "/x"), ("QUIREFOO", "1")])).is_ok());
    }

    #[test]
    fn every_problem_of_a_file_is_reported_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(
            &p,
            "data_dri = \"/x\"\n[queue]\nworkers = \"many\"\nmax_atempts = 2\n[ocr]\nmode = \"fast\"\n",
        )
        .unwrap();
        let e = Config::load(Some(&p), env(&[("QUIRE_QUEUE_STALE_TIMEOUT", "soon")]))
            .unwrap_err()
            .to_string();
        for part in [
            "unknown key `data_dri`; did you mean `data_dir`?",
            "unknown key `queue.max_atempts`; did you mean `queue.max_attempts`?",
            "queue.workers",
            "ocr.mode",
            "QUIRE_QUEUE_STALE_TIMEOUT",
        ] {
            assert!(e.contains(part), "{part} missing from: {e}");
        }
        // A missing file says so once.
        let e = Config::load(Some(Path::new("/no/such.toml")), env(&[])).unwrap_err();
        let chain = format!("{:#}", anyhow::Error::new(e));
        assert_eq!(chain.matches("No such file").count(), 1, "{chain}");
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
