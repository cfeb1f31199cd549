//! Log set-up. Under systemd (`JOURNAL_STREAM` set) lines carry `<N>` priority
//! prefixes that journald understands and no timestamp (the journal adds one);
//! otherwise they go to stderr with timestamps. `-v`/`-q` and `RUST_LOG` adjust
//! the level. Lines go through indicatif's [`MultiProgress`] so that they never
//! garble the live view.

use std::io::Write;
use std::sync::OnceLock;

use indicatif::MultiProgress;
use indicatif_log_bridge::LogWrapper;

static MULTI: OnceLock<MultiProgress> = OnceLock::new();

/// The progress display that log lines are printed above.
pub fn multi() -> MultiProgress {
    MULTI.get_or_init(MultiProgress::new).clone()
}

/// True when stderr is a terminal, so progress bars and live views make sense.
pub fn stderr_is_tty() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stderr())
}

/// True unless this process runs in the background of its terminal
/// (`quire serve &` in an interactive shell): then the terminal belongs to
/// the shell, and a live view drawn on it would overwrite the prompt.
pub fn in_foreground() -> bool {
    use std::os::fd::AsRawFd;
    let fd = std::io::stderr().as_raw_fd();
    // SAFETY: both calls only read process state; tcgetpgrp on a
    // non-terminal fails with -1.
    let (terminal, ours) = unsafe { (libc::tcgetpgrp(fd), libc::getpgrp()) };
    terminal == -1 || terminal == ours
}

/// Installs the logger. The level is `info`, raised by each `-v` and lowered by
/// each `-q`; `RUST_LOG`, when set, takes precedence.
pub fn init(verbose: u8, quiet: u8) {
    // -v adds a line per page read (target `quire::pages`), -vv every
    // debug line, -vvv trace; RUST_LOG replaces all of it.
    let filter = match (verbose, quiet) {
        (0, 0) => "quire=info,quire::pages=warn,warn",
        (1, _) => "quire=info,warn",
        (2, _) => "quire=debug,warn",
        (v, _) if v >= 3 => "quire=trace,warn",
        (_, 1) => "quire=warn,warn",
        _ => "quire=error,error",
    };
    let env = env_logger::Env::default().default_filter_or(filter);
    let mut builder = env_logger::Builder::from_env(env);
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        builder.format(|buf, record| {
            let priority = match record.level() {
                log::Level::Error => 3,
                log::Level::Warn => 4,
                log::Level::Info => 6,
                log::Level::Debug | log::Level::Trace => 7,
            };
            writeln!(buf, "<{priority}>{}", record.args())
        });
    } else {
        builder.format_timestamp_millis().format_target(false);
    }
    let logger = builder.build();
    let max = logger.filter();
    if LogWrapper::new(multi(), logger).try_init().is_ok() {
        log::set_max_level(max);
    }
}
