//! `quire doctor`: checks the installation and the data dir, and for each
//! problem prints the command that fixes it. Exits 1 when anything is wrong.

use std::ffi::CString;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use crate::config::{Config, WatchMode};
use crate::db::Db;

/// One check's verdict.
enum Verdict {
    Ok(String),
    Warn(String, String),
    Fail(String, String),
}

/// Runs `quire doctor`.
pub fn run(config: &Config) -> anyhow::Result<ExitCode> {
    let checks = [
        check_data_dir(config),
        check_database(config),
        check_inbox(config),
        check_same_filesystem(config),
        check_free_space(config),
        check_languages(config),
        check_orientation_model(),
        check_ocr_child(config),
        check_pdftoppm(config),
        check_inotify(config),
    ];
    let mut failed = false;
    // Written, not println!: a closed pipe is an error that ends quietly.
    let mut out = std::io::stdout().lock();
    for verdict in checks {
        match verdict {
            Verdict::Ok(what) => writeln!(out, "ok    {what}")?,
            Verdict::Warn(what, fix) => writeln!(out, "warn  {what}\n      fix: {fix}")?,
            Verdict::Fail(what, fix) => {
                failed = true;
                writeln!(out, "FAIL  {what}\n      fix: {fix}")?;
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn check_data_dir(c: &Config) -> Verdict {
    let dir = &c.data_dir;
    // Doctor looks; it creates nothing (a mistyped --data-dir must not
    // become a fresh, empty, "healthy" data dir).
    if !dir.is_dir() {
        return Verdict::Fail(
            format!("there is no data dir at {}", dir.display()),
            "check --data-dir (or QUIRE_DATA_DIR, data_dir); `quire serve` creates a new one"
                .into(),
        );
    }
    let probe = dir.join(".quire-doctor");
    match std::fs::write(&probe, b"") {
        Ok(()) => {
            let _ = std::fs::remove_file(probe);
            Verdict::Ok(format!("data dir {} is writable", dir.display()))
        }
        Err(e) => Verdict::Fail(
            format!("data dir {} is not writable: {e}", dir.display()),
            format!("sudo chown -R $USER {}", dir.display()),
        ),
    }
}

fn check_database(c: &Config) -> Verdict {
    let location = match c.location() {
        Ok(location) => location,
        Err(e) => {
            return Verdict::Fail(
                e.to_string(),
                "fix database.url (or QUIRE_DATABASE_URL, --database)".into(),
            );
        }
    };
    if !location.exists() {
        return Verdict::Fail(
            format!("there is no quire database at {location}"),
            "check --data-dir; `quire serve` or `quire enqueue FILE` creates one".into(),
        );
    }
    match Db::open(location.clone(), 1).and_then(|db| db.check()) {
        Ok(h) if h.problem.is_none() && h.schema_version == h.known_schema_version => {
            let connection = h.connection.map_or(String::new(), |c| format!(", {c}"));
            Verdict::Ok(format!(
                "database {location} (schema {}, integrity ok{connection})",
                h.schema_version
            ))
        }
        Ok(h) => Verdict::Fail(
            format!(
                "database {location}: schema {}, integrity check says {:?}",
                h.schema_version,
                h.problem.as_deref().unwrap_or("ok")
            ),
            h.repair,
        ),
        Err(e) => Verdict::Fail(
            format!("database {location}: {e}"),
            "see the message above".into(),
        ),
    }
}

fn check_inbox(c: &Config) -> Verdict {
    let inbox = c.inbox_dir();
    if !inbox.is_dir() {
        return Verdict::Fail(
            format!(
                "the inbox {} is missing: files dropped there are not picked up",
                inbox.display()
            ),
            format!(
                "mkdir -p {} (quire serve also creates it at start)",
                inbox.display()
            ),
        );
    }
    let probe = inbox.join(".quire-doctor");
    match std::fs::write(&probe, b"") {
        Ok(()) => {
            let _ = std::fs::remove_file(probe);
            Verdict::Ok(format!("inbox {} is writable", inbox.display()))
        }
        Err(e) => Verdict::Fail(
            format!("inbox {} is not writable: {e}", inbox.display()),
            format!("sudo chown -R $USER {}", inbox.display()),
        ),
    }
}

fn check_same_filesystem(c: &Config) -> Verdict {
    use std::os::unix::fs::MetadataExt;
    let dev = |p: &Path| std::fs::metadata(p).map(|m| m.dev()).ok();
    // The data dir stands in for originals/ when that is not there yet.
    let (inbox, store) = (c.inbox_dir(), c.data_dir.join("originals"));
    let store = if store.is_dir() {
        store
    } else {
        c.data_dir.clone()
    };
    match (dev(&inbox), dev(&store)) {
        (Some(a), Some(b)) if a == b => {
            Verdict::Ok("inbox and store are on one filesystem (files are moved by rename)".into())
        }
        (Some(_), Some(_)) => Verdict::Warn(
            "inbox and store are on different filesystems: every file is copied, then removed"
                .into(),
            format!(
                "set inbox = \"{}/inbox\" or move the data dir next to the inbox",
                c.data_dir.display()
            ),
        ),
        _ => Verdict::Warn(
            "cannot compare the inbox's and the store's filesystems".into(),
            "run quire serve once to create them".into(),
        ),
    }
}

fn check_free_space(c: &Config) -> Verdict {
    let Ok(path) = CString::new(c.data_dir.as_os_str().as_encoded_bytes()) else {
        return Verdict::Warn(
            "cannot check free space".into(),
            "use a data dir path without NUL bytes".into(),
        );
    };
    // SAFETY: statvfs fills the zeroed struct for a NUL-terminated path.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
        return Verdict::Warn(
            "cannot check free space".into(),
            "check that the data dir exists".into(),
        );
    }
    let free = st.f_bavail as u64 * st.f_frsize as u64;
    let gib = free as f64 / (1u64 << 30) as f64;
    if free < 1 << 30 {
        Verdict::Warn(
            format!("only {gib:.2} GiB free in {}", c.data_dir.display()),
            "free some space: du -sh /var/* | sort -h".into(),
        )
    } else {
        Verdict::Ok(format!("{gib:.1} GiB free in the data dir"))
    }
}

fn check_languages(c: &Config) -> Verdict {
    let langs = c.ocr.languages.join("+");
    let missing = crate::tasks::ocr::engine::missing_languages(&langs);
    if missing.is_empty() {
        return Verdict::Ok(format!(
            "tesseract {} loads the languages {langs}",
            tesseract_version()
        ));
    }
    Verdict::Fail(
        format!(
            "tesseract cannot load the OCR language(s) {} (ocr.languages = {langs})",
            missing.join(", ")
        ),
        language_fix(&missing),
    )
}

/// The command that installs tesseract's `languages` on Debian/Ubuntu.
pub fn language_fix(languages: &[String]) -> String {
    let packages: Vec<String> = languages
        .iter()
        .map(|l| format!("tesseract-ocr-{}", l.to_lowercase().replace('_', "-")))
        .collect();
    format!(
        "apt-get install {}, or change ocr.languages",
        packages.join(" ")
    )
}

/// The orientation model that turns pages fed sideways or upside down; without
/// it such pages are read as they are (a warning, not a failure).
fn check_orientation_model() -> Verdict {
    match crate::tasks::ocr::engine::init("osd") {
        Ok(_) => Verdict::Ok("tesseract's orientation model (osd) loads".into()),
        Err(_) => Verdict::Warn(
            "tesseract's orientation model (osd) is missing: pages fed sideways or upside \
             down are read as they are"
                .into(),
            "apt-get install tesseract-ocr-osd".into(),
        ),
    }
}

/// Reads a small blank page through an OCR child process, as a worker does:
/// proves the binary can start its children under this environment (a
/// service's sandbox, ocr.max_memory_mb) and that tesseract runs there.
fn check_ocr_child(c: &Config) -> Verdict {
    use crate::tasks::ocr::child::Child;
    let fix = "run `quire -v process FILE` to see the child's own messages; raise ocr.max_memory_mb \
               if it runs out of memory";
    let result = (|| {
        let mut page = tempfile::Builder::new()
            .suffix(".pnm")
            .tempfile()
            .map_err(|e| format!("cannot make a temporary file: {e}"))?;
        let mut pnm = b"P5\n64 64\n255\n".to_vec();
        pnm.resize(pnm.len() + 64 * 64, 255);
        std::io::Write::write_all(&mut page, &pnm).map_err(|e| e.to_string())?;
        let mut child = Child::spawn(&c.ocr)?;
        let timeout = c.ocr.page_timeout.0;
        let fail = |f: crate::tasks::ocr::child::Failure| f.message("a test page");
        child
            .open(page.path(), crate::detect::Kind::Pnm, timeout)
            .map_err(fail)?;
        child
            .page(1, timeout, &std::sync::atomic::AtomicBool::new(false))
            .map_err(fail)
    })();
    match result {
        Ok(_) => Verdict::Ok("an OCR child process starts and reads a page".into()),
        Err(e) => Verdict::Fail(
            format!("the OCR child process does not work: {e}"),
            fix.into(),
        ),
    }
}

fn tesseract_version() -> String {
    // SAFETY: TessVersion returns a static NUL-terminated string.
    unsafe { std::ffi::CStr::from_ptr(tesseract::plumbing::tesseract_sys::TessVersion()) }
        .to_string_lossy()
        .into_owned()
}

fn check_pdftoppm(c: &Config) -> Verdict {
    if !c.ocr.pdftoppm {
        return Verdict::Ok("pdftoppm not used (ocr.pdftoppm = false)".into());
    }
    match std::process::Command::new("pdftoppm").arg("-v").output() {
        Ok(_) => Verdict::Ok("pdftoppm is installed (scanned PDF pages can be rendered)".into()),
        Err(_) => Verdict::Fail(
            "pdftoppm is not installed: scanned PDF pages cannot be OCR'd".into(),
            "apt-get install poppler-utils".into(),
        ),
    }
}

fn check_inotify(c: &Config) -> Verdict {
    if c.watch.mode == WatchMode::Poll {
        return Verdict::Ok("inbox watched by polling".into());
    }
    let limit: u64 = std::fs::read_to_string("/proc/sys/fs/inotify/max_user_watches")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(u64::MAX);
    let mut folders = 0u64;
    let mut stack = vec![c.inbox_dir()];
    while let Some(d) = stack.pop() {
        folders += 1;
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(e.path());
            }
        }
    }
    if folders * 2 > limit {
        Verdict::Warn(
            format!("the inbox has {folders} folders and the inotify watch limit is {limit}"),
            format!(
                "sudo sysctl fs.inotify.max_user_watches={}",
                (folders * 4).max(65536)
            ),
        )
    } else {
        Verdict::Ok(format!(
            "inotify: {folders} folder(s) to watch, limit {limit}"
        ))
    }
}
