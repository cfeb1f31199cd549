//! The live view: one line of queue counts and one line per running task with
//! its document and page progress, read from the database so that `serve` and
//! `stats --watch` (another terminal, another process) show the same thing.
//! Also where a running daemon sends systemd its status and watchdog pings.

use std::process::ExitCode;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Receiver;
use indicatif::ProgressBar;

use crate::app::App;
use crate::queue::{RunningTask, TaskType};

/// How often the view refreshes.
const REFRESH: Duration = Duration::from_millis(500);

/// The lines of the view.
pub fn render(app: &App) -> Vec<String> {
    let mut lines = vec![];
    match app.queue.stats() {
        Ok(s) => lines.push(s.summary()),
        Err(e) => lines.push(format!("cannot read the queue: {e}")),
    }
    for t in app.queue.running().unwrap_or_default() {
        lines.push(task_line(&t));
    }
    lines
}

fn task_line(t: &RunningTask) -> String {
    let progress = match (t.pages_total, t.task_type) {
        (Some(total), TaskType::Ocr) => format!("page {}/{total}", t.pages_done),
        (_, TaskType::Indexing) => match t.phase {
            Some(phase) => format!("phase {phase}"),
            None => "phase collect".into(),
        },
        (None, TaskType::Ocr) => "opening".into(),
        (_, TaskType::Pdf) => "writing PDF".into(),
    };
    let worker = t.worker.rsplit(':').next().unwrap_or("");
    format!(
        "  {worker:>4} task {:>6} {:<8} document {:>5} {progress:<14} {}",
        t.task_id, t.task_type, t.document_id, t.name
    )
}

/// `quire stats --watch`: redraws the view until interrupted. When stderr is
/// not a terminal (a pipe, a log), where progress bars draw nothing, it
/// prints the view to stdout every 2 seconds instead, a blank line between.
pub fn watch(app: &App) -> anyhow::Result<ExitCode> {
    if !crate::logging::stderr_is_tty() {
        use std::io::Write;
        loop {
            let mut out = std::io::stdout().lock();
            for line in render(app) {
                writeln!(out, "{line}")?;
            }
            writeln!(out)?;
            out.flush()?;
            drop(out);
            std::thread::sleep(Duration::from_secs(2));
        }
    }
    let (_tx, rx) = crossbeam_channel::bounded::<()>(0);
    draw_loop(app, &rx, true);
    Ok(ExitCode::SUCCESS)
}

/// For `serve`: draws the view when stderr is a terminal, and keeps systemd
/// informed when running under it. `None` when there is nothing to do.
pub fn spawn_view(app: App, stop: Receiver<()>) -> Option<JoinHandle<()>> {
    let tty = crate::logging::stderr_is_tty();
    if !tty && !crate::systemd::active() {
        return None;
    }
    std::thread::Builder::new()
        .name("live-view".into())
        .spawn(move || draw_loop(&app, &stop, tty))
        .ok()
}

/// Redraws every [`REFRESH`] until `stop` closes.
fn draw_loop(app: &App, stop: &Receiver<()>, draw: bool) {
    let multi = crate::logging::multi();
    let mut bars: Vec<ProgressBar> = vec![];
    let status_every = crate::systemd::watchdog_interval().map_or(Duration::from_secs(10), |w| {
        (w / 3).min(Duration::from_secs(10))
    });
    let mut since_status = status_every;
    while stop.recv_timeout(REFRESH).is_err_and(|e| e.is_timeout()) {
        since_status += REFRESH;
        if since_status >= status_every {
            crate::systemd::status(app);
            since_status = Duration::ZERO;
        }
        // Drawn only while in the foreground: moved to the background
        // (`quire serve &`, or ^Z then bg), logs go out as plain lines.
        if !draw || !crate::logging::in_foreground() {
            for bar in bars.drain(..) {
                bar.finish_and_clear();
                multi.remove(&bar);
            }
            continue;
        }
        let lines = render(app);
        while bars.len() < lines.len() {
            bars.push(multi.add(ProgressBar::new_spinner()));
        }
        while bars.len() > lines.len() {
            if let Some(b) = bars.pop() {
                b.finish_and_clear();
                multi.remove(&b);
            }
        }
        for (bar, line) in bars.iter().zip(lines) {
            bar.set_message(line);
            bar.tick();
        }
    }
    for b in bars {
        b.finish_and_clear();
    }
}
