//! `quire serve` end to end: files dropped into a real inbox.

use std::io::Write;
use std::time::Duration;

use crate::util::{
    Daemon, Env, corpus, on_both_engines, scanned_pdf, text_pdf, text_png, wait_until, wait_within,
};
use quire::queue::TaskType;

// The queue's behaviour in a daemon, on both engines (#15).
on_both_engines!(
    sigterm_exits_zero_and_the_next_start_finishes_the_work,
    a_task_left_claimed_by_a_killed_daemon_resumes_at_once_without_redoing_pages,
    two_workers_only_daemons_and_a_watcher_process_every_task_once,
    a_cancel_stops_the_running_task_at_once_and_a_retry_reads_no_page_twice,
    a_document_is_indexed_by_the_worker_that_read_it_right_after,
);

#[test]
fn copied_moved_slow_and_folder_drops_are_ingested_once_and_ignored_names_stay() {
    let env = Env::new();
    let daemon = env.serve(&["--workers", "2"]);
    let inbox = env.inbox();
    let outside = env.dir.path().join("outside");
    std::fs::create_dir_all(outside.join("folder/deeper")).unwrap();

    // Copied in (create + close-write).
    text_pdf(&inbox.join("copied in.pdf"), &["alpha copied"]);
    // Moved in (rename), with an odd name.
    text_pdf(&outside.join("-moved ünïcødé.pdf"), &["bravo moved"]);
    std::fs::rename(
        outside.join("-moved ünïcødé.pdf"),
        inbox.join("-moved ünïcødé.pdf"),
    )
    .unwrap();
    // A whole folder moved in.
    text_pdf(&outside.join("folder/one.pdf"), &["charlie folder"]);
    text_pdf(&outside.join("folder/deeper/two.pdf"), &["delta deeper"]);
    std::fs::rename(outside.join("folder"), inbox.join("folder")).unwrap();
    // Ignored names.
    for name in ["scan.pdf.part", ".hidden.pdf", "Thumbs.db", "x.crdownload"] {
        std::fs::write(inbox.join(name), b"%PDF-1.4\n%%EOF\n").unwrap();
    }
    // Written slowly in chunks through one handle: never taken half-written.
    let slow = outside.join("slow.pdf");
    text_pdf(&slow, &["echo slow"]);
    let bytes = std::fs::read(&slow).unwrap();
    let mut f = std::fs::File::create(inbox.join("slow.pdf")).unwrap();
    for chunk in bytes.chunks(bytes.len() / 5 + 1) {
        f.write_all(chunk).unwrap();
        f.flush().unwrap();
        std::thread::sleep(Duration::from_millis(150));
        assert!(
            inbox.join("slow.pdf").exists(),
            "taken while still being written"
        );
    }
    drop(f);

    let docs = env.wait_settled(5);
    let mut names: Vec<&str> = docs.iter().map(|d| d["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "-moved ünïcødé.pdf",
            "copied in.pdf",
            "folder/deeper/two.pdf",
            "folder/one.pdf",
            "slow.pdf"
        ]
    );
    assert!(
        docs.iter().all(|d| d["status"] == "indexed"),
        "{docs:?}\n{}",
        daemon.log_text()
    );
    for word in ["alpha", "bravo", "charlie", "delta", "echo"] {
        let hits = env.json(&["search", word]);
        assert_eq!(hits.as_array().unwrap().len(), 1, "{word}");
    }
    for name in ["scan.pdf.part", ".hidden.pdf", "Thumbs.db", "x.crdownload"] {
        assert!(inbox.join(name).exists(), "{name} was touched");
    }
    assert!(!inbox.join("slow.pdf").exists());
}

#[test]
fn a_duplicate_is_recognised_and_kept_aside() {
    let env = Env::new();
    let daemon = env.serve(&["--workers", "1"]);
    let src = env.dir.path().join("orig.pdf");
    text_pdf(&src, &["foxtrot duplicate"]);
    std::fs::copy(&src, env.inbox().join("first.pdf")).unwrap();
    env.wait_settled(1);
    std::fs::copy(&src, env.inbox().join("second.pdf")).unwrap();
    wait_until("the duplicate to be moved aside", || {
        daemon.log_contains("same content as document 1")
    });
    assert_eq!(env.docs().len(), 1);
    let kept: Vec<_> = std::fs::read_dir(env.data().join("duplicates"))
        .unwrap()
        .collect();
    assert_eq!(kept.len(), 1);
    assert!(!env.inbox().join("second.pdf").exists());
    assert_eq!(env.json(&["show", "1"])["duplicates"], 1);
}

fn sigterm_exits_zero_and_the_next_start_finishes_the_work(env: Env) {
    let env = env.set("QUIRE_QUEUE_SHUTDOWN_TIMEOUT", "0s");
    let mut daemon = env.serve(&["--workers", "1"]);
    let pdf = env.dir.path().join("long.pdf");
    scanned_pdf(&pdf, 6);
    std::fs::rename(&pdf, env.inbox().join("long.pdf")).unwrap();
    wait_until("OCR to start", || daemon.log_contains("(ocr) claimed"));
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait_exit(), Some(0), "{}", daemon.log_text());
    let _again = env.serve(&["--workers", "1"]);
    let docs = env.wait_settled(1);
    assert_eq!(docs[0]["status"], "indexed");
}

fn a_task_left_claimed_by_a_killed_daemon_resumes_at_once_without_redoing_pages(env: Env) {
    // A stale timeout far longer than the test: only dead-process detection can free the task.
    let env = env.set("QUIRE_QUEUE_STALE_TIMEOUT", "1h");
    let mut daemon = env.serve(&["--workers", "1"]);
    // A generated scan: the corpus's multipage.pdf has a 9000x9000 page that
    // took most of the time limit on a busy machine.
    let pdf = env.dir.path().join("long.pdf");
    scanned_pdf(&pdf, 10);
    std::fs::rename(&pdf, env.inbox().join("long.pdf")).unwrap();
    wait_until("two pages to be checkpointed", || {
        let out = env.run(&["show", "1", "--json"]);
        out.status.success()
            && serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["page_list"]
                .as_array()
                .is_some_and(|p| p.len() >= 2)
    });
    daemon.kill();
    let before = env.json(&["show", "1"]);
    assert_eq!(before["tasks"][0]["status"], "claimed");
    let done_before = before["page_list"].as_array().unwrap().len();
    let restarted = env.serve(&["--workers", "1"]);
    let docs = env.wait_settled(1);
    assert_eq!(docs[0]["status"], "indexed", "{}", restarted.log_text());
    let after = env.json(&["show", "1"]);
    let pages = after["ocr_details"]["pages"].as_object().unwrap();
    assert_eq!(pages.len(), after["pages"].as_i64().unwrap() as usize);
    for n in 1..=done_before {
        assert_eq!(
            pages[&n.to_string()]["attempts"],
            1,
            "page {n} was read again"
        );
    }
    assert!(restarted.log_contains("died while running this task"));
}

fn two_workers_only_daemons_and_a_watcher_process_every_task_once(env: Env) {
    let watcher = env.serve(&["--workers", "1"]);
    let a = env.serve(&["--workers", "1", "--no-watch"]);
    let b = env.serve(&["--workers", "1"]);
    assert!(b.log_contains("another quire serve is watching the inbox"));
    let mut files = vec![];
    for i in 0..12 {
        let p = env.dir.path().join(format!("f{i}.png"));
        if i % 3 == 0 {
            text_png(&p, &[&format!("golf number {i}")]);
        } else {
            text_pdf(&p.with_extension("pdf"), &[&format!("hotel number {i}")]);
            files.push(p.with_extension("pdf"));
            continue;
        }
        files.push(p);
    }
    for f in &files {
        std::fs::rename(f, env.inbox().join(f.file_name().unwrap())).unwrap();
    }
    let docs = env.wait_settled(12);
    assert!(docs.iter().all(|d| d["status"] == "indexed"));
    // OCR, indexing and the searchable PDF for each.
    wait_until("every task to complete", || {
        env.json(&["stats"])["tasks"]["completed"] == 36
    });
    let logs = [watcher.log_text(), a.log_text(), b.log_text()].concat();
    assert_eq!(logs.matches("(ocr) completed").count(), 12);
    assert_eq!(logs.matches("(indexing) completed").count(), 12);
    assert_eq!(logs.matches("(pdf) completed").count(), 12);
}

#[test]
fn poll_mode_takes_files_once_they_stop_changing() {
    // For network shares, where inotify sees nothing: scans and a stability window.
    let env = Env::new()
        .set("QUIRE_WATCH_MODE", "poll")
        .set("QUIRE_WATCH_POLL_INTERVAL", "100ms");
    let daemon = env.serve(&["--workers", "1"]);
    assert!(daemon.log_contains("Poll mode"), "{}", daemon.log_text());
    text_pdf(&env.inbox().join("polled.pdf"), &["india polled"]);
    let outside = env.dir.path().join("slow.pdf");
    text_pdf(&outside, &["juliet slow"]);
    let bytes = std::fs::read(&outside).unwrap();
    let mut f = std::fs::File::create(env.inbox().join("slow.pdf")).unwrap();
    for chunk in bytes.chunks(bytes.len() / 4 + 1) {
        f.write_all(chunk).unwrap();
        f.flush().unwrap();
        std::thread::sleep(Duration::from_millis(150));
        assert!(env.inbox().join("slow.pdf").exists(), "taken while growing");
    }
    drop(f);
    let docs = env.wait_settled(2);
    assert!(docs.iter().all(|d| d["status"] == "indexed"), "{docs:?}");
}

#[test]
fn with_the_queue_disabled_serve_only_ingests() {
    let env = Env::new().set("QUIRE_QUEUE_ENABLED", "false");
    let ingest_only = env.serve(&[]);
    assert!(ingest_only.log_contains("ingesting only"));
    text_pdf(&env.inbox().join("later.pdf"), &["kilo later"]);
    wait_until("the file to be ingested", || env.docs().len() == 1);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(env.docs()[0]["status"], "queued");
    // A worker process elsewhere does the work.
    let workers = Env {
        dir: env.dir,
        extra: vec![],
        postgres: None,
    };
    let _w = workers.serve(&["--workers", "1", "--no-watch"]);
    let docs = workers.wait_settled(1);
    assert_eq!(docs[0]["status"], "indexed");
}

#[test]
fn ctrl_c_to_the_daemons_process_group_does_not_fail_the_page_being_read() {
    use std::os::unix::process::CommandExt;
    // As a terminal's Ctrl-C does: SIGINT to the whole foreground group.
    let env = Env::new().set("QUIRE_QUEUE_SHUTDOWN_TIMEOUT", "0s");
    let log = env.dir.path().join("group.log");
    let mut daemon = Daemon {
        child: Some(
            env.cmd()
                .args(["serve", "--workers", "1"])
                .process_group(0)
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .unwrap(),
        ),
        log: log.clone(),
    };
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_until("the daemon to start", || log_text().contains("started"));
    std::fs::copy(corpus("multipage.pdf"), env.inbox().join("multi.pdf")).unwrap();
    wait_until("OCR to start", || log_text().contains("(ocr) claimed"));
    // The OCR child runs in a process group of its own, so the terminal's
    // signal reaches only the daemon, which decides how to stop.
    let daemon_pid = daemon.pid() as u32;
    // (ppid, pgrp) of a process.
    let stat = |pid: u32| -> Option<(u32, u32)> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // pid (comm) state ppid pgrp ...
        let fields: Vec<&str> = stat.rsplit_once(") ")?.1.split(' ').collect();
        Some((fields[1].parse().ok()?, fields[2].parse().ok()?))
    };
    let mut ocr_child = None;
    wait_until("the OCR child", || {
        ocr_child = std::fs::read_dir("/proc").unwrap().flatten().find_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            (stat(pid)?.0 == daemon_pid).then_some(pid)
        });
        ocr_child.is_some()
    });
    // Between its fork and its exec a child is still in the daemon's group:
    // look again until it has had the time to leave it.
    let pid = ocr_child.unwrap();
    wait_within(
        "the OCR child to have a process group of its own",
        Duration::from_secs(5),
        || stat(pid).is_none_or(|(_, pgrp)| pgrp == pid),
    );
    std::thread::sleep(Duration::from_millis(300));
    unsafe { libc::kill(-daemon.pid(), libc::SIGINT) };
    assert_eq!(daemon.wait_exit(), Some(0), "{}", daemon.log_text());
    assert!(!log_text().contains("died of signal"), "{}", log_text());
    let show = env.json(&["show", "1"]);
    let pages = show["ocr_details"]["pages"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    assert!(
        pages.values().all(|p| p["status"] == "done"),
        "a page was failed by the Ctrl-C: {show}"
    );
}

fn a_cancel_stops_the_running_task_at_once_and_a_retry_reads_no_page_twice(env: Env) {
    let daemon = env.serve(&["--workers", "1"]);
    let pdf = env.dir.path().join("long.pdf");
    scanned_pdf(&pdf, 6);
    std::fs::rename(&pdf, env.inbox().join("long.pdf")).unwrap();
    wait_until("page 2 to be read", || daemon.log_contains("page 2/6:"));
    // By document id, as a person would.
    let cancelled = env.ok(&["cancel", "--doc", "1"]);
    assert!(cancelled.contains("cancelled"), "{cancelled}");
    wait_until("the daemon to stop the task", || {
        daemon.log_contains("of document 1 was cancelled; stopped it")
    });
    assert_eq!(env.json(&["show", "1"])["status"], "cancelled");
    let retried = env.ok(&["retry", "--doc", "1"]);
    assert!(retried.contains("is pending again"), "{retried}");
    env.wait_settled(1);
    wait_until("indexed", || {
        env.json(&["show", "1"])["status"] == "indexed"
    });
    let log = daemon.log_text();
    for n in 1..=6 {
        let reads = log.matches(&format!("page {n}/6:")).count();
        assert_eq!(reads, 1, "page {n} was read {reads} times:\n{log}");
    }
    // Nothing left to cancel or retry by document: exit 1, saying so.
    let none = env.run(&["cancel", "--doc", "1"]);
    assert_eq!(none.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&none.stderr).contains("no pending or running task"));
}

#[test]
fn a_dropped_folder_is_taken_and_then_removed_from_the_inbox() {
    let env = Env::new();
    let _daemon = env.serve(&["--workers", "1"]);
    let staging = env.dir.path().join("batch");
    std::fs::create_dir_all(staging.join("sub")).unwrap();
    text_pdf(&staging.join("one.pdf"), &["first of the batch"]);
    text_pdf(&staging.join("sub/two.pdf"), &["second of the batch"]);
    std::fs::rename(&staging, env.inbox().join("batch")).unwrap();
    env.wait_settled(2);
    let mut names: Vec<String> = env
        .docs()
        .iter()
        .map(|d| d["name"].as_str().unwrap().into())
        .collect();
    names.sort();
    assert_eq!(names, ["batch/one.pdf", "batch/sub/two.pdf"]);
    wait_until("the emptied folders to go", || {
        !env.inbox().join("batch").exists()
    });
    assert!(env.inbox().is_dir(), "the inbox itself stays");
}

#[test]
fn an_inbox_removed_and_made_again_is_watched_again_at_once() {
    let env = Env::new();
    let daemon = env.serve(&["--workers", "1"]);
    std::fs::remove_dir_all(env.inbox()).unwrap();
    wait_until("a warning", || daemon.log_contains("is gone"));
    std::fs::create_dir_all(env.inbox()).unwrap();
    wait_until("the watch renewed", || {
        daemon.log_contains("watching it again")
    });
    let pdf = env.dir.path().join("after.pdf");
    text_pdf(&pdf, &["dropped into the new inbox"]);
    std::fs::rename(&pdf, env.inbox().join("after.pdf")).unwrap();
    // Well within the 5-minute rescan: the new folder is watched.
    wait_within("the file to be taken", Duration::from_secs(20), || {
        env.docs().len() == 1
    });
}

#[test]
fn a_document_is_logged_as_ingested_before_its_task_is_claimed() {
    let env = Env::new();
    let daemon = env.serve(&["--workers", "2"]);
    for i in 0..12 {
        let pdf = env.dir.path().join(format!("f{i}.pdf"));
        text_pdf(&pdf, &[&format!("file number {i}")]);
        std::fs::rename(&pdf, env.inbox().join(format!("f{i}.pdf"))).unwrap();
    }
    env.wait_settled(12);
    let log = daemon.log_text();
    for id in 1..=12 {
        let ingested = log.find(&format!("as document {id} ("));
        let claimed = log.find(&format!("(ocr) claimed: document {id} "));
        match (ingested, claimed) {
            (Some(i), Some(c)) => assert!(
                i < c,
                "document {id} claimed before it was ingested:\n{log}"
            ),
            other => panic!("document {id}: {other:?}\n{log}"),
        }
    }
}

fn a_document_is_indexed_by_the_worker_that_read_it_right_after(env: Env) {
    let _daemon = env.serve(&["--workers", "2"]);
    for i in 0..8 {
        let png = env.dir.path().join(format!("p{i}.png"));
        text_png(&png, &[&format!("page {i} of the batch")]);
        std::fs::rename(&png, env.inbox().join(format!("p{i}.png"))).unwrap();
    }
    env.wait_settled(8);
    let app = env.app();
    for doc in 1..=8 {
        let tasks = app.queue.tasks_of(doc).unwrap();
        let of = |t| tasks.iter().find(|x| x.task_type == t).unwrap();
        let (ocr, index) = (of(TaskType::Ocr), of(TaskType::Indexing));
        // Not left to wait behind the other documents' OCR (high priority):
        // the same worker claimed it as soon as the OCR completed.
        assert_eq!(
            ocr.claimed_by, index.claimed_by,
            "document {doc}: {tasks:?}"
        );
        let read_at = ocr.completed_at.unwrap();
        let claimed_at = index.claimed_at.unwrap();
        let other_ocr_claims_between = (1..=8)
            .filter(|d| *d != doc)
            .flat_map(|d| app.queue.tasks_of(d).unwrap())
            .filter(|t| t.task_type == TaskType::Ocr && t.claimed_by == ocr.claimed_by)
            .filter(|t| t.claimed_at.is_some_and(|c| c >= read_at && c < claimed_at))
            .count();
        assert_eq!(other_ocr_claims_between, 0, "document {doc}");
    }
}
