//! Worker ids: `host:pid:start:wN`, unique per process start, so a later run
//! of quire on the same host can tell whether the process that holds a claim
//! is still alive (same pid and same start time) or gone.

/// This process's identity, from which each worker's id is made.
#[derive(Debug, Clone)]
pub struct WorkerIdentity {
    prefix: String,
}

impl WorkerIdentity {
    /// The identity of the running process.
    pub fn current() -> WorkerIdentity {
        let pid = std::process::id();
        WorkerIdentity {
            prefix: format!("{}:{pid}:{}", hostname(), start_time(pid).unwrap_or(0)),
        }
    }

    /// The id of worker `n` of this process.
    pub fn worker(&self, n: usize) -> String {
        format!("{}:w{n}", self.prefix)
    }
}

/// True when `worker` is an id of this host whose process no longer runs
/// (no such pid, or the pid now belongs to a process started at another time).
/// Ids of other hosts are never called dead: only their stale timeout frees them.
pub fn is_dead_local_worker(worker: &str) -> bool {
    let mut parts = worker.split(':');
    let (Some(host), Some(pid), Some(start)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let (Ok(pid), Ok(start)) = (pid.parse::<u32>(), start.parse::<u64>()) else {
        return false;
    };
    if host != hostname() || pid == std::process::id() {
        return false;
    }
    start_time(pid) != Some(start)
}

/// The host name, from the kernel.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().replace(':', "_"))
        .unwrap_or_else(|_| "localhost".into())
}

/// A process's start time in clock ticks since boot (field 22 of /proc/PID/stat).
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: skip past its last ')'.
    let after = &stat[stat.rfind(')')? + 2..];
    after.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_finished_child_is_dead() {
        let me = WorkerIdentity::current().worker(0);
        assert!(!is_dead_local_worker(&me));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let id = format!("{}:{pid}:{}:w0", hostname(), start_time(pid).unwrap_or(1));
        child.wait().unwrap();
        assert!(is_dead_local_worker(&id));
        assert!(!is_dead_local_worker("otherhost:1:1:w0"));
        assert!(!is_dead_local_worker("not an id"));
    }
}
