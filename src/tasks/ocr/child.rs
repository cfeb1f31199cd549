//! The OCR child process: each worker thread reads pages through its own
//! `quire ocr-child` process, which keeps a tesseract engine and the open
//! document between requests. Tesseract, leptonica and pdf-extract run only
//! there, so the daemon survives what they can do wrong: a page that hangs is
//! killed after `ocr.page_timeout`, a crash (abort, segfault, stack overflow)
//! or a page that needs more than `ocr.max_memory_mb` costs that page alone,
//! and the next page gets a fresh child.
//!
//! Protocol: one JSON [`Request`] per line on the child's stdin, one JSON
//! [`Reply`] per line on its stdout. The child's stderr (library chatter such
//! as leptonica's "Error in pixReadMem") goes to the debug log.

use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::reader::{OpenDocument, PageText};
use super::searchable::{self, PageOverlay};
use crate::config::OcrConfig;
use crate::detect::Kind;

/// What the daemon asks of the child.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Request {
    /// Opens a document (closing the previous one); answered by `Opened`.
    Open { path: PathBuf, kind: String },
    /// Reads page `n` (1-based) of the open document; answered by `Page`.
    Page { n: usize },
    /// Which of the configured OCR languages tesseract cannot load;
    /// answered by `Languages`.
    Languages,
    /// Writes the open document's searchable PDF to `out`; answered by `Written`.
    WritePdf {
        out: PathBuf,
        pages: Vec<PageOverlay>,
    },
    /// Decodes page `page` (1-based) of the image file `path` and writes it
    /// to `out` as PNG, at most `width` pixels wide (for the web page:
    /// browsers show no TIFF); answered by `Rendered`. Decoding untrusted
    /// images belongs here, under the child's memory limit.
    Render {
        path: PathBuf,
        kind: String,
        page: usize,
        width: u32,
        out: PathBuf,
    },
}

/// The child's answer to one request.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    Opened {
        pages: usize,
    },
    Page(PageText),
    Written {
        pages: usize,
    },
    Languages {
        missing: Vec<String>,
    },
    Rendered,
    /// The request failed; the message is for the user.
    Error(String),
}

/// Runs the child: the hidden `quire ocr-child` command. Reads the OCR
/// configuration as JSON from the first line of stdin, then serves requests
/// until stdin closes.
pub fn child_main() -> anyhow::Result<()> {
    // Die with the thread that started us, so a killed daemon leaves no
    // children behind.
    // SAFETY: prctl with PR_SET_PDEATHSIG takes a signal number and no pointers.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    let stdin = std::io::stdin().lock();
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut lines = stdin.lines();
    let Some(first) = lines.next() else {
        return Ok(());
    };
    let config: OcrConfig = serde_json::from_str(&first?)?;
    limit_memory(config.max_memory_mb);
    let mut doc: Option<OpenDocument> = None;
    for line in lines {
        let reply = match serde_json::from_str::<Request>(&line?)? {
            Request::Open { path, kind } => {
                doc = None; // free the previous document first
                match OpenDocument::open(&path, Kind::from_stored(&kind)) {
                    Ok(d) => {
                        let pages = d.pages();
                        doc = Some(d);
                        Reply::Opened { pages }
                    }
                    Err(e) => Reply::Error(e),
                }
            }
            Request::Page { n } => match &doc {
                Some(d) => match d.read_page(&config, n) {
                    Ok(mut p) => {
                        if p.text.len() > MAX_TEXT {
                            let mut cut = MAX_TEXT;
                            while !p.text.is_char_boundary(cut) {
                                cut -= 1;
                            }
                            p.text.truncate(cut);
                        }
                        Reply::Page(p)
                    }
                    Err(e) => Reply::Error(e),
                },
                None => Reply::Error("no document is open".into()),
            },
            Request::Languages => Reply::Languages {
                missing: super::engine::missing_languages(&config.languages.join("+")),
            },
            Request::WritePdf { out, pages } => match &doc {
                Some(d) => {
                    let written = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        searchable::write(d, &pages, config.default_dpi, &out)
                    }));
                    match written {
                        Ok(Ok(pages)) => Reply::Written { pages },
                        Ok(Err(e)) => Reply::Error(e),
                        Err(_) => Reply::Error("writing the PDF crashed the writer".into()),
                    }
                }
                None => Reply::Error("no document is open".into()),
            },
            Request::Render {
                path,
                kind,
                page,
                width,
                out: png,
            } => match super::image::render_png(&path, Kind::from_stored(&kind), page, width, &png)
            {
                Ok(()) => Reply::Rendered,
                Err(e) => Reply::Error(e),
            },
        };
        serde_json::to_writer(&mut out, &reply)?;
        out.write_all(b"\n")?;
        out.flush()?;
    }
    Ok(())
}

/// Caps the child's address space so that a page needing absurd memory fails
/// (an allocation failure aborts the child) instead of swapping the machine.
fn limit_memory(mb: u64) {
    if mb == 0 {
        return;
    }
    let bytes = mb.saturating_mul(1024 * 1024) as libc::rlim_t;
    let limit = libc::rlimit {
        rlim_cur: bytes,
        rlim_max: bytes,
    };
    // SAFETY: setrlimit reads the struct we pass.
    if unsafe { libc::setrlimit(libc::RLIMIT_AS, &limit) } != 0 {
        log::warn!(
            "cannot limit the OCR child's memory to {mb} MiB: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// The longest reply the daemon reads (a page's text is far smaller; the
/// child truncates text at [`MAX_TEXT`]): a runaway child cannot make the
/// daemon allocate without bound.
const MAX_REPLY: usize = 64 << 20;

/// A page's text is cut at this many bytes (JSON escaping can grow text up
/// to 6 times, and the reply must stay under [`MAX_REPLY`]).
const MAX_TEXT: usize = MAX_REPLY / 8;

/// How often a wait for the child looks at its stop flag.
const STOP_CHECK: Duration = Duration::from_millis(100);

/// What a wait for the child's reply ended with.
enum Readable {
    Yes,
    TimedOut,
    Stopped,
}

/// The daemon's handle on one child.
pub struct Child {
    process: std::process::Child,
    /// Also its process group's id.
    pid: i32,
    /// True once the group was killed: never signal it twice, as an empty
    /// group's id may be reused.
    killed: bool,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// The document the child has open.
    open: Option<PathBuf>,
    /// Pages read by this child, for recycling it.
    pages: u32,
}

impl Child {
    /// Starts a child with `config`.
    pub fn spawn(config: &OcrConfig) -> Result<Child, String> {
        // /proc/self/exe is this very binary even after a package upgrade
        // replaced the file on disk.
        let exe = if Path::new("/proc/self/exe").exists() {
            PathBuf::from("/proc/self/exe")
        } else {
            std::env::current_exe().map_err(|e| format!("cannot find the quire binary: {e}"))?
        };
        let mut command = Command::new(exe);
        // Tesseract's OpenMP threads make it slower, not faster: parallel
        // engines fight over cores, and even one engine alone is slower on a
        // small shared machine (`cargo bench --bench ocr`, 2 cores: 4.3 s a
        // page with OpenMP, 1.0 s without). Workers are the parallelism; a
        // user who wants OpenMP sets OMP_THREAD_LIMIT themselves.
        if std::env::var_os("OMP_THREAD_LIMIT").is_none() {
            command.env("OMP_THREAD_LIMIT", "1");
        }
        // Its own process group: a Ctrl-C or a signal to the daemon's group
        // must not kill a page mid-read (the daemon decides when it stops),
        // and on a timeout the whole group goes, pdftoppm included.
        let mut process = command
            .process_group(0)
            .arg("ocr-child")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start the OCR child process: {e}"))?;
        let pid = process.id() as i32;
        let (Some(stdin), Some(stdout), Some(stderr)) = (
            process.stdin.take(),
            process.stdout.take(),
            process.stderr.take(),
        ) else {
            unreachable!("all three streams were piped");
        };
        // From here on, Drop kills and reaps it if anything fails.
        let mut child = Child {
            process,
            pid,
            killed: false,
            stdin,
            stdout: BufReader::new(stdout),
            open: None,
            pages: 0,
        };
        std::thread::Builder::new()
            .name("ocr-child-stderr".into())
            .spawn(move || {
                let mut stderr = BufReader::new(stderr);
                let mut line = vec![];
                // At most 64 KiB a line: a runaway writer cannot grow this.
                while (&mut stderr)
                    .take(64 * 1024)
                    .read_until(b'\n', &mut line)
                    .is_ok_and(|n| n > 0)
                {
                    let text = String::from_utf8_lossy(&line);
                    log::debug!("ocr child: {}", text.trim_end());
                    line.clear();
                }
            })
            .map_err(|e| format!("cannot start a thread: {e}"))?;
        let config = serde_json::to_string(config).expect("the configuration serializes");
        writeln!(child.stdin, "{config}")
            .map_err(|e| format!("cannot talk to the OCR child: {e}"))?;
        Ok(child)
    }

    /// Number of pages read by this child.
    pub fn pages_read(&self) -> u32 {
        self.pages
    }

    /// Opens `path` in the child unless it has it open already; returns its page count.
    pub fn open(&mut self, path: &Path, kind: Kind, timeout: Duration) -> Result<usize, Failure> {
        self.open = None;
        let req = Request::Open {
            path: path.to_owned(),
            kind: kind.as_str().into(),
        };
        match self.call(&req, timeout, None)? {
            Reply::Opened { pages } => {
                self.open = Some(path.to_owned());
                Ok(pages)
            }
            Reply::Error(e) => Err(Failure::Error(e)),
            other => Err(Failure::Died(format!("unexpected reply {other:?}"))),
        }
    }

    /// True when the child has `path` open.
    pub fn has_open(&self, path: &Path) -> bool {
        self.open.as_deref() == Some(path)
    }

    /// Reads page `n` of the open document. Setting `stop` kills the child
    /// within a tenth of a second (the task was cancelled).
    pub fn page(
        &mut self,
        n: usize,
        timeout: Duration,
        stop: &AtomicBool,
    ) -> Result<PageText, Failure> {
        self.pages += 1;
        match self.call(&Request::Page { n }, timeout, Some(stop))? {
            Reply::Page(p) => Ok(p),
            Reply::Error(e) => Err(Failure::Error(e)),
            other => Err(Failure::Died(format!("unexpected reply {other:?}"))),
        }
    }

    /// The configured OCR languages that tesseract cannot load.
    pub fn missing_languages(&mut self, timeout: Duration) -> Result<Vec<String>, Failure> {
        match self.call(&Request::Languages, timeout, None)? {
            Reply::Languages { missing } => Ok(missing),
            Reply::Error(e) => Err(Failure::Error(e)),
            other => Err(Failure::Died(format!("unexpected reply {other:?}"))),
        }
    }

    /// Writes the open document's searchable PDF to `out`; returns its page
    /// count. Setting `stop` kills the child within a tenth of a second.
    pub fn write_pdf(
        &mut self,
        pages: Vec<PageOverlay>,
        out: &Path,
        timeout: Duration,
        stop: &AtomicBool,
    ) -> Result<usize, Failure> {
        let req = Request::WritePdf {
            out: out.to_owned(),
            pages,
        };
        match self.call(&req, timeout, Some(stop))? {
            Reply::Written { pages } => Ok(pages),
            Reply::Error(e) => Err(Failure::Error(e)),
            other => Err(Failure::Died(format!("unexpected reply {other:?}"))),
        }
    }

    /// Writes page `page` of the image file `path` to `out` as a PNG at most
    /// `width` pixels wide (see [`Request::Render`]).
    pub fn render(
        &mut self,
        path: &Path,
        kind: Kind,
        page: usize,
        width: u32,
        out: &Path,
        timeout: Duration,
    ) -> Result<(), Failure> {
        let req = Request::Render {
            path: path.to_owned(),
            kind: kind.as_str().into(),
            page,
            width,
            out: out.to_owned(),
        };
        match self.call(&req, timeout, None)? {
            Reply::Rendered => Ok(()),
            Reply::Error(e) => Err(Failure::Error(e)),
            other => Err(Failure::Died(format!("unexpected reply {other:?}"))),
        }
    }

    /// Sends one request and waits up to `timeout` for the whole reply, or
    /// until `stop` is set. On a timeout, a stop or a broken child the child
    /// is killed; the caller drops it.
    fn call(
        &mut self,
        req: &Request,
        timeout: Duration,
        stop: Option<&AtomicBool>,
    ) -> Result<Reply, Failure> {
        let sent = serde_json::to_writer(&mut self.stdin, req)
            .map_err(std::io::Error::from)
            .and_then(|()| self.stdin.write_all(b"\n"))
            .and_then(|()| self.stdin.flush());
        if sent.is_err() {
            return Err(self.died());
        }
        let deadline = Instant::now() + timeout;
        let mut line = vec![];
        loop {
            match self.wait_readable(deadline, stop) {
                Readable::Yes => {}
                Readable::TimedOut => {
                    self.kill();
                    return Err(Failure::TimedOut(timeout));
                }
                Readable::Stopped => {
                    self.kill();
                    return Err(Failure::Died(
                        "it was stopped (the task was cancelled)".into(),
                    ));
                }
            }
            // Data is there: this read does not block.
            let chunk = match self.stdout.fill_buf() {
                Ok([]) | Err(_) => return Err(self.died()),
                Ok(chunk) => chunk,
            };
            let (take, done) = match chunk.iter().position(|b| *b == b'\n') {
                Some(i) => (i + 1, true),
                None => (chunk.len(), false),
            };
            line.extend_from_slice(&chunk[..take]);
            self.stdout.consume(take);
            if done {
                break;
            }
            if line.len() > MAX_REPLY {
                self.kill();
                return Err(Failure::Died(format!(
                    "its reply passed {} MiB",
                    MAX_REPLY >> 20
                )));
            }
        }
        serde_json::from_slice(&line).map_err(|e| {
            self.kill();
            Failure::Died(format!("garbled reply ({e})"))
        })
    }

    /// Waits until the child's stdout has data (or closed), until `deadline`
    /// or until `stop` is set (looked at every [`STOP_CHECK`]).
    fn wait_readable(&mut self, deadline: Instant, stop: Option<&AtomicBool>) -> Readable {
        if !self.stdout.buffer().is_empty() {
            return Readable::Yes;
        }
        loop {
            if stop.is_some_and(|s| s.load(Ordering::SeqCst)) {
                return Readable::Stopped;
            }
            let left = deadline
                .saturating_duration_since(Instant::now())
                .min(STOP_CHECK);
            let mut fd = libc::pollfd {
                fd: self.stdout.get_ref().as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = left.as_millis().min(i32::MAX as u128) as i32;
            // SAFETY: one valid pollfd for the duration of the call.
            match unsafe { libc::poll(&mut fd, 1, ms) } {
                n if n > 0 => return Readable::Yes,
                0 if Instant::now() >= deadline => return Readable::TimedOut,
                0 => {}
                _ if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted => {}
                _ => return Readable::Yes, // let the read report the error
            }
        }
    }

    /// Describes how the child died, reaping it.
    fn died(&mut self) -> Failure {
        // It closed its pipes; give it a moment to exit on its own. Checked
        // without reaping it: while it is a zombie its pid (the group's id)
        // cannot be reused, so the group kill below hits only its group.
        let mut exited = false;
        for _ in 0..20 {
            // SAFETY: waitid writes into the zeroed siginfo we own.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
            let rc = unsafe { libc::waitid(libc::P_PID, self.pid as libc::id_t, &mut info, flags) };
            // SAFETY: si_pid is valid to read after waitid on a SIGCHLD-type info.
            if rc == 0 && unsafe { info.si_pid() } == self.pid {
                exited = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        // The group first (and whatever the child left running in it), then
        // reap: a child that had exited keeps its own status.
        self.kill();
        let status = exited.then(|| self.process.wait().ok()).flatten();
        let why = match status.and_then(|s| s.signal()) {
            Some(libc::SIGABRT) => {
                "it aborted (often: out of memory under ocr.max_memory_mb)".to_string()
            }
            Some(libc::SIGSEGV) => "it crashed (segmentation fault)".to_string(),
            Some(libc::SIGKILL) => "it was killed (SIGKILL; out of memory?)".to_string(),
            Some(sig) => format!("it died of signal {sig}"),
            None => match status.and_then(|s| s.code()) {
                Some(code) => format!("it exited with status {code}"),
                None => "it stopped answering".to_string(),
            },
        };
        Failure::Died(why)
    }

    /// Kills the child's whole process group (the child and any pdftoppm it
    /// started) and reaps the child.
    fn kill(&mut self) {
        if !self.killed {
            self.killed = true;
            // SAFETY: kill(2) with a negative pid signals that process group.
            unsafe { libc::kill(-self.pid, libc::SIGKILL) };
        }
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Why a request got no answer.
#[derive(Debug)]
pub enum Failure {
    /// No child could be started (out of processes or file descriptors):
    /// says nothing about the document; worth retrying later.
    Spawn(String),
    /// The child answered with an error about the input.
    Error(String),
    /// The child took too long and was killed.
    TimedOut(Duration),
    /// The child crashed or broke the protocol; it is gone.
    Died(String),
}

impl Failure {
    /// True when the child is gone and must be replaced.
    pub fn lost_child(&self) -> bool {
        !matches!(self, Failure::Error(_) | Failure::Spawn(_))
    }

    /// The message for the user, about `what` ("the page", "opening the file").
    pub fn message(&self, what: &str) -> String {
        match self {
            Failure::Error(e) | Failure::Spawn(e) => e.clone(),
            Failure::TimedOut(t) => {
                format!("{what} took longer than {t:?} (ocr.page_timeout) and was stopped")
            }
            Failure::Died(why) => format!("the OCR reader failed on {what}: {why}"),
        }
    }
}
