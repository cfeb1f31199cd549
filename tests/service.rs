//! Running as a service: the systemd unit, sd_notify messages, man pages and
//! shell completions.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::Env;

#[test]
fn serve_tells_systemd_ready_status_and_stopping() {
    let env = Env::new();
    let socket_path = env.dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut cmd = env.cmd();
    cmd.arg("serve")
        .args(["--workers", "1"])
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "2000000")
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let mut seen = String::new();
    let read_until = |want: &str, seen: &mut String| {
        let start = Instant::now();
        let mut buf = [0u8; 4096];
        while !seen.contains(want) {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "no {want} from quire serve; got:\n{seen}"
            );
            if let Ok(n) = socket.recv(&mut buf) {
                seen.push_str(&String::from_utf8_lossy(&buf[..n]));
                seen.push('\n');
            }
        }
    };
    read_until("READY=1", &mut seen);
    read_until("STATUS=", &mut seen);
    read_until("WATCHDOG=1", &mut seen);
    // READY comes once the inbox is watched: a file dropped now is taken.
    assert!(env.inbox().is_dir());
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    read_until("STOPPING=1", &mut seen);
    assert!(child.wait().unwrap().success());
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    let env = Env::new();
    let unit = env.ok(&["systemd-unit"]);
    assert_eq!(
        unit,
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("dist/quire.service"))
            .unwrap()
    );
    for line in [
        "Type=notify",
        "StateDirectory=quire",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "Environment=OMP_THREAD_LIMIT=1",
        "Restart=on-failure",
    ] {
        assert!(unit.lines().any(|l| l == line), "the unit lacks {line}");
    }
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("systemd-analyze is not installed; skipping the verification");
        return;
    }
    // ExecStart must name an existing binary for verify; the real one will do.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("quire.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/quire", env!("CARGO_BIN_EXE_quire")),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    // verify exits 0 on unknown keys too, only printing them: any output fails.
    assert!(out.status.success() && said.trim().is_empty(), "{said}");
}

#[test]
fn the_checked_in_man_pages_are_what_the_code_generates() {
    let env = Env::new();
    let fresh = env.dir.path().join("man");
    env.ok(&["man", "--dir", fresh.to_str().unwrap()]);
    let checked_in = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let names = |dir: &Path| {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        names(&fresh),
        names(&checked_in),
        "run `make man` and commit man/"
    );
    for name in names(&fresh) {
        assert_eq!(
            std::fs::read_to_string(fresh.join(&name)).unwrap(),
            std::fs::read_to_string(checked_in.join(&name)).unwrap(),
            "man/{name} is out of date: run `make man` and commit man/"
        );
    }
    let top = std::fs::read_to_string(fresh.join("quire.1")).unwrap();
    for section in [
        "FILES",
        "ENVIRONMENT",
        "EXIT STATUS",
        "EXAMPLES",
        "QUIRE_OCR_PAGE_TIMEOUT",
    ] {
        assert!(top.contains(section), "quire.1 lacks {section}");
    }
}

#[test]
fn bash_loads_the_completion_script() {
    let env = Env::new();
    let script = env.ok(&["completions", "bash"]);
    let path = env.dir.path().join("quire.bash");
    std::fs::write(&path, script).unwrap();
    // Load it, then ask bash to complete `quire se` the way it would on <TAB>.
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -e; source '{}'; complete -p quire; \
             COMP_WORDS=(quire se); COMP_CWORD=1; COMP_LINE='quire se'; COMP_POINT=8; \
             _quire quire se quire; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            path.display()
        ))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("-F _quire quire"), "{stdout}");
    assert!(stdout.lines().any(|l| l == "search"), "{stdout}");
    assert!(stdout.lines().any(|l| l == "serve"), "{stdout}");
}

/// Runs `script` (a terminal for the shell lines `body`, with job control)
/// on this env's data dir; returns what the terminal showed.
fn in_a_terminal(env: &Env, body: &str) -> String {
    let run = env.dir.path().join("run.sh");
    std::fs::write(&run, format!("set -m\n{body}\n")).unwrap();
    let shown = env.dir.path().join("typescript");
    let out = std::process::Command::new("script")
        .args(["-qec", &format!("bash {}", run.display())])
        .arg(&shown)
        .envs(env.cmd().get_envs().filter_map(|(k, v)| Some((k, v?))))
        .env("QUIRE", env!("CARGO_BIN_EXE_quire"))
        .env("TERM", "xterm")
        .output()
        .unwrap();
    // Its status is the script's (a daemon stopped by SIGINT, a timeout's
    // 124); what matters is what the terminal showed.
    let _ = out;
    std::fs::read_to_string(&shown).unwrap_or_default()
}

#[test]
fn the_live_view_is_drawn_in_the_foreground_only() {
    // indicatif's spinner draws braille characters.
    let drawn = |s: &str| s.chars().any(|c| ('\u{2801}'..='\u{28ff}').contains(&c));
    let env = Env::new();
    let fg = in_a_terminal(
        &env,
        "timeout --foreground -s INT 3 \"$QUIRE\" serve --workers 1",
    );
    assert!(drawn(&fg), "no live view in the foreground:\n{fg}");
    // `quire serve &` in an interactive shell: plain log lines, nothing
    // drawn over the prompt.
    let bg = in_a_terminal(
        &env,
        "\"$QUIRE\" serve --workers 1 &\nsleep 3\nkill -INT %1\nwait",
    );
    assert!(bg.contains("started"), "no log lines:\n{bg}");
    assert!(!drawn(&bg), "a live view in the background:\n{bg}");
    // `quire process` in the foreground shows its page count.
    let pdf = env.dir.path().join("three.pdf");
    crate::util::scanned_pdf(&pdf, 3);
    let shown = in_a_terminal(&env, &format!("\"$QUIRE\" process {}", pdf.display()));
    assert!(shown.contains("ocr page "), "no page progress:\n{shown}");
}

#[test]
fn man_pages_show_what_options_take_and_how_to_search() {
    let page = |name: &str| {
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("man").join(name))
            .unwrap()
    };
    let search = page("quire-search.1");
    assert!(
        search.contains("\\fB\\-\\-limit\\fR \\fI<N>\\fR"),
        "{search}"
    );
    for section in ["QUERY SYNTAX", "EXIT STATUS", "Examples"] {
        assert!(search.contains(section), "{section} missing");
    }
    assert!(page("quire-text.1").contains("EXIT STATUS"));
}
