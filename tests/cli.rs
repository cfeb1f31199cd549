//! The command line on its own: enqueue, stats, list, retry, cancel, errors.

use crate::util::{Env, on_both_engines, text_pdf, text_png};

// What does not depend on the engine runs on both (#15).
on_both_engines!(
    enqueue_two_files_then_stats_shows_two_pending_ocr_tasks_and_enqueueing_again_adds_nothing,
    list_show_cancel_retry_and_reprocess,
    stats_watch_prints_the_live_view_when_not_on_a_terminal,
    a_closed_pipe_ends_every_printing_command_quietly,
    text_of_a_failed_document_says_why_and_exits_1,
    open_and_rm_while_a_daemon_runs,
    documents_from_a_folder_are_named_relative_to_it,
    verbose_adds_a_line_per_page_and_quiet_takes_lines_away,
);

fn enqueue_two_files_then_stats_shows_two_pending_ocr_tasks_and_enqueueing_again_adds_nothing(
    env: Env,
) {
    let a = env.dir.path().join("a.png");
    let b = env.dir.path().join("b.pdf");
    text_png(&a, &["hello from a"]);
    text_pdf(&b, &["hello from b"]);
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    env.ok(&["enqueue", a, b]);
    let stats = env.json(&["stats"]);
    assert_eq!(stats["documents"]["total"], 2);
    assert_eq!(stats["documents"]["queued"], 2);
    assert_eq!(stats["tasks"]["pending"], 2);
    assert_eq!(stats["by_type"]["ocr"]["pending"], 2);
    assert_eq!(stats["by_type"]["indexing"]["pending"], 0);
    let again = env.ok(&["enqueue", a, b]);
    assert_eq!(again.matches("already document").count(), 2, "{again}");
    let stats = env.json(&["stats"]);
    assert_eq!(stats["documents"]["total"], 2);
    assert_eq!(stats["tasks"]["pending"], 2);
    // The user's files were copied, not moved.
    assert!(std::path::Path::new(a).exists());
}

fn list_show_cancel_retry_and_reprocess(env: Env) {
    let a = env.dir.path().join("a.pdf");
    text_pdf(&a, &["cancel me"]);
    env.ok(&["enqueue", "--priority", "low", a.to_str().unwrap()]);
    let docs = env.docs();
    assert_eq!(docs[0]["status"], "queued");
    // Named by the file's name, as an inbox file is.
    assert_eq!(docs[0]["name"], "a.pdf");
    let show = env.json(&["show", "1"]);
    let task = show["tasks"][0]["id"].as_i64().unwrap().to_string();
    assert_eq!(show["tasks"][0]["priority"], "low");
    env.ok(&["cancel", &task]);
    assert_eq!(env.docs()[0]["status"], "cancelled");
    let twice = env.run(&["cancel", &task]);
    assert_eq!(twice.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&twice.stderr).contains("only pending or claimed"));
    env.ok(&["retry", &task]);
    assert_eq!(env.docs()[0]["status"], "queued");
    let out = env.ok(&["enqueue", "--reprocess", "1"]);
    assert!(out.contains("already has a pending"), "{out}");
    let none = env.run(&["enqueue", "--reprocess", "42"]);
    assert_eq!(none.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&none.stderr).contains("no document with id 42"));
}

#[test]
fn usage_errors_exit_2_and_runtime_errors_exit_1_with_one_line() {
    let env = Env::new();
    let out = env.run(&["stats"]);
    assert_eq!(out.status.code(), Some(1), "no database yet");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no quire database"));
    assert_eq!(
        env.run(&["enqueue", "--priority", "urgent", "x"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(env.run(&["no-such-command"]).status.code(), Some(2));
    let out = env.run(&["enqueue", "/no/such/file.pdf"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/no/such/file.pdf"), "{err}");
    assert_eq!(
        err.lines()
            .filter(|l| l.starts_with("quire: error"))
            .count(),
        1,
        "{err}"
    );
}

#[test]
fn a_bad_config_file_names_the_key_and_file() {
    let env = Env::new();
    let cfg = env.dir.path().join("quire.toml");
    std::fs::write(&cfg, "[queue]\nworkerz = 2\n").unwrap();
    let out = env.run(&["--config", cfg.to_str().unwrap(), "stats"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("workerz") && err.contains("quire.toml"),
        "{err}"
    );
}

#[test]
fn a_database_from_a_newer_quire_is_refused() {
    let env = Env::new();
    let pdf = env.dir.path().join("a.pdf");
    text_pdf(&pdf, &["a first document makes the database"]);
    env.ok(&["enqueue", pdf.to_str().unwrap()]);
    // The schema version is the engine's own marker: SQLite's user_version.
    let db = rusqlite::Connection::open(env.data().join("quire.db")).unwrap();
    db.pragma_update(None, "user_version", 999).unwrap();
    drop(db);
    let out = env.run(&["stats"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("newer than this quire"));
}

fn stats_watch_prints_the_live_view_when_not_on_a_terminal(env: Env) {
    use std::io::{BufRead, BufReader};
    let pdf = env.dir.path().join("w.pdf");
    text_pdf(&pdf, &["watched"]);
    env.ok(&["enqueue", pdf.to_str().unwrap()]);
    let mut child = env
        .cmd()
        .args(["stats", "--watch"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.starts_with("queue: 1 pending, 0 running"), "{first}");
    assert_eq!(lines.next().unwrap().unwrap(), "");
    // It keeps going: a second frame.
    assert!(lines.next().unwrap().unwrap().starts_with("queue: "));
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn doctor_reads_a_page_through_an_ocr_child_and_says_when_it_cannot() {
    let env = Env::new();
    // A data dir that does not exist is reported, not created.
    let out = env.run(&["doctor"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("there is no data dir at"), "{said}");
    assert!(said.contains("there is no quire database at"), "{said}");
    assert!(!env.data().exists(), "doctor created {:?}", env.data());
    // A real one (made by enqueue) with its inbox: all well.
    let png = env.dir.path().join("a.png");
    text_png(&png, &["doctor"]);
    env.ok(&["enqueue", png.to_str().unwrap()]);
    std::fs::create_dir_all(env.inbox()).unwrap();
    let ok = env.ok(&["doctor"]);
    assert!(
        ok.contains("ok    an OCR child process starts and reads a page"),
        "{ok}"
    );
    // A memory cap no tesseract fits in.
    let starved = Env::new().set("QUIRE_OCR_MAX_MEMORY_MB", "30");
    let out = starved.run(&["doctor"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("FAIL  the OCR child process does not work"),
        "{said}"
    );
    assert!(said.contains("raise ocr.max_memory_mb"), "{said}");
}

fn a_closed_pipe_ends_every_printing_command_quietly(env: Env) {
    let dir = env.dir.path().join("many");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..40 {
        text_pdf(
            &dir.join(format!("d{i:02}.pdf")),
            &[&format!("invoice number {i}\n").repeat(40)],
        );
    }
    env.ok(&["process", dir.join("d00.pdf").to_str().unwrap()]);
    std::fs::create_dir_all(env.inbox()).unwrap(); // for doctor's sake
    let many = dir.to_str().unwrap();
    for command in [
        format!("enqueue {many}"),
        "list".into(),
        "show 1".into(),
        "search invoice --pages".into(),
        "text 1".into(),
        "stats".into(),
        "list --json".into(),
        "doctor".into(),
    ] {
        for _ in 0..5 {
            // `quire ... | head -c 1`: head exits after one byte.
            let script =
                format!("\"$QUIRE\" {command} | head -c 1 >/dev/null; echo \"${{PIPESTATUS[0]}}\"");
            let out = std::process::Command::new("bash")
                .args(["-c", &script])
                .envs(env.cmd().get_envs().filter_map(|(k, v)| Some((k, v?))))
                .env("QUIRE", env!("CARGO_BIN_EXE_quire"))
                .output()
                .unwrap();
            let status = String::from_utf8_lossy(&out.stdout).trim().to_string();
            let err = String::from_utf8_lossy(&out.stderr);
            // 0, or 141: ended by SIGPIPE, as cat and grep are.
            assert!(
                status == "0" || status == "141",
                "{command}: exit {status}: {err}"
            );
            assert!(
                !err.contains("panicked") && !err.contains("Broken pipe"),
                "{command}: {err}"
            );
        }
    }
}

#[test]
fn environment_values_work_plain_and_a_typo_is_named() {
    let env = Env::new()
        .set("QUIRE_OCR_LANGUAGES", "eng")
        .set("QUIRE_QUEUE_WORKERS", "4");
    let png = env.dir.path().join("a.png");
    text_png(&png, &["plain environment values"]);
    env.ok(&["process", png.to_str().unwrap()]);
    let typo = Env::new().set("QUIRE_QEUE_WORKERS", "4");
    let out = typo.run(&["stats"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("did you mean QUIRE_QUEUE_WORKERS"), "{err}");
    // A missing config file says so once.
    let out = env.run(&["--config", "/no/such/quire.toml", "stats"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
}

fn text_of_a_failed_document_says_why_and_exits_1(env: Env) {
    let empty = env.dir.path().join("empty.pdf");
    std::fs::write(&empty, b"").unwrap();
    env.ok(&["enqueue", empty.to_str().unwrap()]);
    assert_eq!(env.run(&["process", "1"]).status.code(), Some(1));
    let out = env.run(&["text", "1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("has no text: it failed: the file is empty"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

fn open_and_rm_while_a_daemon_runs(env: Env) {
    let _daemon = env.serve(&["--workers", "1"]);
    for (name, text) in [
        ("keep.pdf", "a document to keep"),
        ("gone.pdf", "a zanzibar ledger"),
    ] {
        let pdf = env.dir.path().join(name);
        text_pdf(&pdf, &[text]);
        std::fs::rename(&pdf, env.inbox().join(name)).unwrap();
    }
    env.wait_settled(2);
    let docs = env.docs();
    let id_of = |name: &str| {
        docs.iter().find(|d| d["name"] == name).unwrap()["id"]
            .as_i64()
            .unwrap()
            .to_string()
    };
    let (keep, gone) = (id_of("keep.pdf"), id_of("gone.pdf"));
    // open: the original's absolute path.
    let path = env.ok(&["open", &gone]);
    let path = std::path::PathBuf::from(path.trim());
    assert!(path.is_absolute() && path.is_file(), "{path:?}");
    let original = std::fs::read(&path).unwrap();
    // export: the original under its own name, beside us.
    let out = env.dir.path().join("exported");
    std::fs::create_dir_all(&out).unwrap();
    let exported = env
        .cmd()
        .current_dir(&out)
        .args(["export", &gone])
        .output()
        .unwrap();
    assert!(exported.status.success());
    assert_eq!(std::fs::read(out.join("gone.pdf")).unwrap(), original);
    // rm: gone from list, search and the store; the file moved to trash/.
    let out = env.ok(&["rm", &gone]);
    assert!(out.contains("trash"), "{out}");
    assert!(!path.exists());
    let trashed = env.data().join("trash").join(format!("{gone}-gone.pdf"));
    assert_eq!(std::fs::read(&trashed).unwrap(), original);
    assert_eq!(env.docs().len(), 1);
    assert_eq!(env.run(&["search", "zanzibar"]).status.code(), Some(1));
    assert!(
        env.app()
            .queue
            .tasks_of(gone.parse().unwrap())
            .unwrap()
            .is_empty()
    );
    // The other is untouched; --purge deletes the file.
    let kept = std::path::PathBuf::from(env.ok(&["open", &keep]).trim());
    env.ok(&["rm", "--purge", &keep]);
    assert!(!kept.exists());
    assert_eq!(
        std::fs::read_dir(env.data().join("trash")).unwrap().count(),
        1
    );
    // A removed id is an error, exit 1.
    let again = env.run(&["rm", &keep]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("no document with id"));
}

#[test]
fn a_missing_ocr_language_fails_doctor_and_stops_serve() {
    // zzz: no such traineddata anywhere; eng loads, so tesseract alone
    // would start and quietly read in English.
    let env = Env::new().set("QUIRE_OCR_LANGUAGES", "eng,zzz");
    std::fs::create_dir_all(env.inbox()).unwrap();
    let out = env.run(&["doctor"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("cannot load the OCR language(s) zzz"),
        "{said}"
    );
    assert!(said.contains("apt-get install tesseract-ocr-zzz"), "{said}");
    let out = env.run(&["serve", "--workers", "1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("tesseract-ocr-zzz"), "{err}");
}

fn documents_from_a_folder_are_named_relative_to_it(env: Env) {
    let top = env.dir.path().join("scans");
    std::fs::create_dir_all(top.join("2024/may")).unwrap();
    text_pdf(&top.join("2024/may/bill.pdf"), &["a bill"]);
    text_pdf(&top.join("letter.pdf"), &["a letter"]);
    let single = env.dir.path().join("single.pdf");
    text_pdf(&single, &["one file"]);
    env.ok(&["enqueue", top.to_str().unwrap(), single.to_str().unwrap()]);
    let mut names: Vec<String> = env
        .docs()
        .iter()
        .map(|d| d["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["2024/may/bill.pdf", "letter.pdf", "single.pdf"]);
}

fn verbose_adds_a_line_per_page_and_quiet_takes_lines_away(env: Env) {
    let pdf = env.dir.path().join("two.pdf");
    text_pdf(&pdf, &["first page", "second page"]);
    let lines = |args: &[&str]| {
        let out = env
            .cmd()
            .env_remove("RUST_LOG")
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let path = pdf.to_str().unwrap();
    let quiet = lines(&["process", path]);
    assert!(!quiet.contains("page 1/2"), "{quiet}");
    env.ok(&["enqueue", "--reprocess", "1"]);
    let v = lines(&["-v", "process", "1"]);
    assert!(v.contains("page 1/2: ") && v.contains("page 2/2: "), "{v}");
    assert!(!v.contains("DEBUG"), "{v}");
    // -q: warnings and errors only.
    env.ok(&["enqueue", "--reprocess", "1"]);
    let q = lines(&["-q", "process", "1"]);
    assert!(!q.contains("INFO"), "{q}");
}
