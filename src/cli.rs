//! The command line, as clap definitions. The doc comments are the help text
//! (and the man pages are generated from them).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::queue::{Priority, TaskType};

/// quire: a hot-folder OCR and full-text search daemon.
///
/// Drop files (PDF, PNG, JPEG, TIFF, ...) into the inbox folder; `quire serve`
/// takes each into its store, reads every page (the PDF text layer or
/// tesseract) and indexes the text, so that `quire search` finds any word on
/// any page.
#[derive(Debug, Parser)]
#[command(
    name = "quire",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// The data directory, holding quire.db, inbox/ and originals/
    /// [env: QUIRE_DATA_DIR] [default: $STATE_DIRECTORY, $XDG_DATA_HOME/quire or ~/.local/share/quire]
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// The database: empty for the SQLite file in the data dir, or a
    /// postgres://user@host:port/dbname URL [env: QUIRE_DATABASE_URL]
    #[arg(long, global = true, value_name = "URL")]
    pub database: Option<String>,

    /// The configuration file [env: QUIRE_CONFIG]
    /// [default: ~/.config/quire/config.toml or /etc/quire/config.toml, if present]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// More log output (-v: a line per page read, -vv: debug, -vvv: trace)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Less log output (-q: warnings and errors only, -qq: errors only)
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "verbose")]
    pub quiet: u8,

    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: watch the inbox, ingest files, run OCR and indexing workers
    Serve(ServeArgs),
    /// Add files or folders (recursively) as documents, copying them into the store
    Enqueue(EnqueueArgs),
    /// Run OCR and indexing for one document now, in the foreground (its pages
    /// read by queue.workers threads at once)
    Process(ProcessArgs),
    /// Search the text of every page
    Search(SearchArgs),
    /// Show queue and document counts
    Stats(StatsArgs),
    /// List documents
    List(ListArgs),
    /// Show one document: its pages, their source and confidence, and its tasks
    Show(ShowArgs),
    /// Print a document's text, pages separated by form feeds
    Text(TextArgs),
    /// Copy a document's original file, or its searchable PDF, out of the store
    Export(ExportArgs),
    /// Print the path of a document's original file, or open it (--view)
    Open(OpenArgs),
    /// Remove documents: their tasks, pages and search entries; originals go to trash/
    Rm(RmArgs),
    /// Put failed or cancelled tasks back in the queue
    Retry(RetryArgs),
    /// Cancel pending or running tasks
    Cancel(CancelArgs),
    /// Check the installation and the data directory, and say how to fix what is wrong
    Doctor,
    /// Copy this SQLite installation (documents, pages, tasks, index) into an
    /// empty PostgreSQL database, then say what to change in the configuration
    CopyDb(CopyDbArgs),
    /// Print a shell completion script: `source <(quire completions bash)`
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the systemd unit for `quire serve` (install it as
    /// /etc/systemd/system/quire.service)
    SystemdUnit,
    /// Write the man pages into DIR (for packagers; `make man`)
    #[command(hide = true)]
    Man {
        #[arg(long, value_name = "DIR", default_value = "man")]
        dir: PathBuf,
    },
    /// Internal: the OCR child process a worker reads pages through (see
    /// tasks::ocr::child). Not for people.
    #[command(hide = true)]
    OcrChild,
}

/// `quire serve`
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Worker threads (default: queue.workers, or one per CPU core)
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Run workers only, without watching the inbox (to share a database with another daemon)
    #[arg(long)]
    pub no_watch: bool,
    /// Serve the web page, API and metrics on ADDR (default: http.listen,
    /// 127.0.0.1:8484); an empty ADDR turns them off
    #[arg(long, value_name = "ADDR")]
    pub http: Option<String>,
}

/// `quire enqueue`
#[derive(Debug, Args)]
pub struct EnqueueArgs {
    /// Files or folders to add; folders are walked recursively
    #[arg(value_name = "PATH", required_unless_present = "reprocess")]
    pub paths: Vec<PathBuf>,
    /// Priority of the new tasks
    #[arg(long, value_enum, default_value_t = PriorityArg::Normal)]
    pub priority: PriorityArg,
    /// Re-run a step for an existing document instead of adding files
    #[arg(long, value_name = "ID", conflicts_with = "paths")]
    pub reprocess: Option<i64>,
    /// With --reprocess: the step to run again
    #[arg(long = "type", value_enum, default_value_t = TaskTypeArg::Ocr, requires = "reprocess")]
    pub task_type: TaskTypeArg,
}

/// `quire process`
#[derive(Debug, Args)]
pub struct ProcessArgs {
    /// A document id, or a file to add and process
    #[arg(value_name = "PATH|ID")]
    pub target: String,
}

/// `quire search`
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Words to find, all on one page: "a phrase", pay* (prefix), a OR b,
    /// -word or NOT word (exclude); see QUERY SYNTAX in the man page
    #[arg(value_name = "QUERY", required = true, num_args = 1..)]
    pub query: Vec<String>,
    /// At most this many results (documents, or pages with --pages)
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub limit: usize,
    /// One result per matching page instead of per document
    #[arg(long)]
    pub pages: bool,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
    /// Pass the query to SQLite FTS5 as it is
    #[arg(long)]
    pub raw: bool,
    /// Only documents added on or after this date (YYYY-MM-DD)
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// Only documents added before the end of this date (YYYY-MM-DD)
    #[arg(long, value_name = "DATE")]
    pub until: Option<String>,
    /// Only documents with this status
    #[arg(long)]
    pub status: Option<String>,
}

/// `quire copy-db`
#[derive(Debug, Args)]
pub struct CopyDbArgs {
    /// The PostgreSQL database to copy into: postgres://user@host:port/dbname
    /// (empty; the user must own it). The password as for database.url
    #[arg(long, value_name = "URL")]
    pub to: String,
}

/// `quire stats`
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Print JSON
    #[arg(long, conflicts_with = "watch")]
    pub json: bool,
    /// Keep showing live counts and running tasks until interrupted
    #[arg(long)]
    pub watch: bool,
}

/// `quire list`
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only documents with this status (queued, ocr, indexing, indexed, failed, cancelled)
    #[arg(long)]
    pub status: Option<String>,
    /// Only documents with pages that read poorly (faint, blurred, or not text)
    #[arg(long)]
    pub poor: bool,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

/// `quire show`
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The document id
    pub id: i64,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

/// `quire text`
#[derive(Debug, Args)]
pub struct TextArgs {
    /// The document id
    pub id: i64,
    /// Only this page (1-based)
    #[arg(long, value_name = "N")]
    pub page: Option<i64>,
}

impl Command {
    /// True for the commands that drive OCR child processes through pipes:
    /// for them a closed pipe must stay an error they handle (a child that
    /// died), not a signal that kills them.
    pub fn drives_children(&self) -> bool {
        matches!(
            self,
            Command::Serve(_)
                | Command::Process(_)
                | Command::Export(_)
                | Command::Doctor
                | Command::OcrChild
        )
    }
}

/// The command line with `quire search`'s exclusions made safe for the
/// parser: an argument of `search` that starts with a dash and a letter,
/// digit or quote (`-zebrafish`, `-"red herring"`) is a word to exclude, not
/// an option, and is passed on as `NOT zebrafish`. Options (`--json`,
/// `--limit N`, `-v`, `-q`, `-h`) and everything after `--` are left alone.
pub fn with_search_exclusions(args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    // Options that take a value, globally and of `search`.
    const VALUED: &[&str] = &[
        "--data-dir",
        "--config",
        "--limit",
        "--since",
        "--until",
        "--status",
    ];
    let mut out = Vec::with_capacity(args.len());
    let mut it = args.into_iter();
    out.extend(it.next()); // the program
    let mut in_search = false;
    while let Some(arg) = it.next() {
        let text = arg.to_string_lossy().into_owned();
        if text == "--" {
            out.push(arg);
            out.extend(it);
            break;
        }
        if VALUED.contains(&text.as_str()) {
            out.push(arg);
            out.extend(it.next());
            continue;
        }
        // After a leading '-' (one byte), slicing at 1 is on a char boundary.
        let rest = text.strip_prefix('-').filter(|r| !r.is_empty());
        let short_flag = rest.is_some_and(|r| r.chars().all(|c| "vqhV".contains(c)));
        let word = rest.is_some_and(|r| r.starts_with(|c: char| c.is_alphanumeric() || c == '"'));
        if let (true, Some(rest)) = (in_search && word && !short_flag, rest) {
            out.push(format!("NOT {rest}").into());
            continue;
        }
        if !text.starts_with('-') && !in_search {
            // The first plain word is the subcommand.
            in_search = text == "search";
            if !in_search {
                out.push(arg);
                out.extend(it);
                break;
            }
        }
        out.push(arg);
    }
    out
}

/// `quire open`
#[derive(Debug, Args)]
pub struct OpenArgs {
    /// The document id
    pub id: i64,
    /// Open it with the desktop's viewer (xdg-open) instead of printing its path
    #[arg(long)]
    pub view: bool,
}

/// `quire rm`
#[derive(Debug, Args)]
pub struct RmArgs {
    /// The document ids
    #[arg(value_name = "ID", required = true)]
    pub ids: Vec<i64>,
    /// Delete the original files instead of moving them to <data_dir>/trash/
    #[arg(long)]
    pub purge: bool,
}

/// `quire export`
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The document id
    pub id: i64,
    /// Where to write it (`-` for standard output) [default: the original's
    /// file name, with .pdf for --searchable, in the current folder]
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The searchable PDF instead of the original: the one in output.dir, or
    /// made now (for documents read with output.searchable_pdf off)
    #[arg(long)]
    pub searchable: bool,
    /// Replace FILE if it exists
    #[arg(long)]
    pub force: bool,
}

/// `quire retry`
#[derive(Debug, Args)]
pub struct RetryArgs {
    /// Task ids to retry
    #[arg(value_name = "TASK_ID", required_unless_present_any = ["all_failed", "docs"])]
    pub tasks: Vec<i64>,
    /// A document whose failed or cancelled tasks to retry (repeatable)
    #[arg(long = "doc", value_name = "ID")]
    pub docs: Vec<i64>,
    /// Retry every failed task
    #[arg(long, conflicts_with_all = ["tasks", "docs"])]
    pub all_failed: bool,
}

/// `quire cancel`
#[derive(Debug, Args)]
pub struct CancelArgs {
    /// Task ids to cancel
    #[arg(value_name = "TASK_ID", required_unless_present = "docs")]
    pub tasks: Vec<i64>,
    /// A document whose pending and running tasks to cancel (repeatable)
    #[arg(long = "doc", value_name = "ID")]
    pub docs: Vec<i64>,
}

/// A priority on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PriorityArg {
    High,
    Normal,
    Low,
}

impl From<PriorityArg> for Priority {
    fn from(p: PriorityArg) -> Priority {
        match p {
            PriorityArg::High => Priority::High,
            PriorityArg::Normal => Priority::Normal,
            PriorityArg::Low => Priority::Low,
        }
    }
}

/// A task type on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TaskTypeArg {
    Ocr,
    Indexing,
    /// The searchable PDF (output.dir)
    Pdf,
}

impl From<TaskTypeArg> for TaskType {
    fn from(t: TaskTypeArg) -> TaskType {
        match t {
            TaskTypeArg::Ocr => TaskType::Ocr,
            TaskTypeArg::Indexing => TaskType::Indexing,
            TaskTypeArg::Pdf => TaskType::Pdf,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn search_exclusions_are_words_not_options() {
        let args = |a: &[&str]| -> Vec<String> {
            let os = a.iter().map(std::ffi::OsString::from).collect();
            with_search_exclusions(os)
                .into_iter()
                .map(|s| s.into_string().unwrap())
                .collect()
        };
        assert_eq!(
            args(&[
                "quire",
                "--data-dir",
                "-odd",
                "search",
                "invoice",
                "-zebrafish",
                "--limit",
                "-5",
                "-v"
            ]),
            [
                "quire",
                "--data-dir",
                "-odd",
                "search",
                "invoice",
                "NOT zebrafish",
                "--limit",
                "-5",
                "-v"
            ]
        );
        assert_eq!(
            args(&["quire", "search", "-\"red herring\"", "tax", "--", "-kept"]),
            [
                "quire",
                "search",
                "NOT \"red herring\"",
                "tax",
                "--",
                "-kept"
            ]
        );
        // Non-ASCII words, with or without a dash.
        assert_eq!(
            args(&["quire", "search", "été", "-éclair", "é"]),
            ["quire", "search", "été", "NOT éclair", "é"]
        );
        // Only search's arguments.
        assert_eq!(
            args(&["quire", "list", "-zebra"]),
            ["quire", "list", "-zebra"]
        );
        assert_eq!(
            args(&["quire", "enqueue", "search", "-x1"]),
            ["quire", "enqueue", "search", "-x1"]
        );
        let via_clap = Cli::try_parse_from(args(&[
            "quire",
            "search",
            "invoice",
            "-zebrafish",
            "--pages",
        ]));
        let Command::Search(s) = via_clap.unwrap().command else {
            panic!("not search");
        };
        assert_eq!(
            (s.query.join(" "), s.pages),
            ("invoice NOT zebrafish".to_string(), true)
        );
    }

    #[test]
    fn the_cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
