//! systemd integration (`Type=notify`): READY once the daemon is up, STATUS
//! lines with queue counts, WATCHDOG pings, STOPPING on shutdown. Every call is
//! a no-op outside systemd (no `NOTIFY_SOCKET`).

use std::time::Duration;

use sd_notify::NotifyState;

use crate::app::App;

/// Tells systemd the daemon is ready, with a first status line.
pub fn ready(app: &App) {
    let status = status_line(app).0;
    log::info!("ready: {status}");
    send(&[NotifyState::Ready, NotifyState::Status(&status)]);
}

/// Tells systemd the daemon is stopping.
pub fn stopping() {
    send(&[NotifyState::Stopping]);
}

/// Sends a status line and, when a watchdog is configured, a keep-alive
/// ping, but only if the database answered: a daemon that cannot read its
/// queue for `WatchdogSec` gets restarted by systemd.
pub fn status(app: &App) {
    let (status, healthy) = status_line(app);
    send(&[NotifyState::Status(&status)]);
    if healthy && watchdog_interval().is_some() {
        send(&[NotifyState::Watchdog]);
    }
}

/// The watchdog interval systemd asked for (`WatchdogSec`), if any.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    let pid_ok =
        std::env::var("WATCHDOG_PID").map_or(true, |p| p == std::process::id().to_string());
    pid_ok.then(|| Duration::from_micros(usec))
}

/// True when running under systemd's notify protocol.
pub fn active() -> bool {
    std::env::var_os("NOTIFY_SOCKET").is_some()
}

/// The status line, and whether the database answered (one read of the stats).
fn status_line(app: &App) -> (String, bool) {
    match app.queue.stats() {
        Ok(s) => (s.summary(), true),
        Err(e) => (format!("cannot read the queue: {e}"), false),
    }
}

fn send(states: &[NotifyState<'_>]) {
    if active()
        && let Err(e) = sd_notify::notify(states)
    {
        log::warn!("cannot notify systemd: {e}");
    }
}
