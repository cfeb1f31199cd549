//! The real binary on PostgreSQL (`database.url`): each test on a fresh
//! database of the test server, with the same data dir for the originals.

use crate::util::pgserver::PgServer;
use crate::util::{Env, text_pdf, text_png};

#[test]
fn serve_on_postgres_reads_dropped_files_and_every_command_answers_from_the_server() {
    let env = Env::postgres();
    let daemon = env.serve(&["--workers", "2"]);
    text_pdf(
        &env.inbox().join("letter.pdf"),
        &["dear walrus", "yours quokka"],
    );
    text_png(&env.inbox().join("scan.png"), &["INVOICE NUMBER 4711"]);
    let docs = env.wait_settled(2);
    assert!(docs.iter().all(|d| d["status"] == "indexed"), "{docs:?}");
    assert!(
        !env.data().join("quire.db").exists(),
        "nothing of the database is kept in the data dir"
    );
    let hits = env.search(&["quokka"]);
    assert_eq!(hits[0]["name"], "letter.pdf");
    assert_eq!(hits[0]["page"], 2);
    assert_eq!(env.search(&["invoice"])[0]["name"], "scan.png");
    let stats = env.json(&["stats"]);
    assert_eq!(stats["documents"]["indexed"], 2);
    assert_eq!(
        stats["tasks"]["completed"], 6,
        "OCR, indexing and PDF for each"
    );
    let id = docs[0]["id"].as_i64().unwrap().to_string();
    assert!(env.ok(&["text", &id]).len() > 5);
    let show = env.json(&["show", &id]);
    assert_eq!(show["tasks"].as_array().unwrap().len(), 3, "{show}");
    let doctor = env.ok(&["doctor"]);
    assert!(doctor.contains("postgres://postgres@"), "{doctor}");
    drop(daemon);
}

#[test]
fn stats_and_list_have_the_same_json_shape_on_both_engines() {
    fn keys(v: &serde_json::Value) -> Vec<String> {
        let mut out = vec![];
        if let Some(map) = v.as_object() {
            for (k, v) in map {
                out.push(k.clone());
                out.extend(keys(v).into_iter().map(|sub| format!("{k}.{sub}")));
            }
        }
        out
    }
    let (sqlite, postgres) = (Env::new(), Env::postgres());
    for env in [&sqlite, &postgres] {
        let file = env.dir.path().join("a.pdf");
        text_pdf(&file, &["alpha"]);
        env.ok(&["process", file.to_str().unwrap()]);
    }
    for args in [&["stats"][..], &["list"], &["show", "1"]] {
        let (a, b) = (sqlite.json(args), postgres.json(args));
        let (a, b) = match (a.as_array(), b.as_array()) {
            (Some(a), Some(b)) => (a[0].clone(), b[0].clone()),
            _ => (a, b),
        };
        assert_eq!(keys(&a), keys(&b), "quire {args:?} --json");
    }
}

#[test]
fn two_daemons_on_one_database_read_each_document_once() {
    let env = Env::postgres();
    let first = env.serve(&["--workers", "2"]);
    let second = env.serve(&["--workers", "2"]);
    for i in 0..6 {
        text_pdf(
            &env.inbox().join(format!("d{i}.pdf")),
            &[&format!("word{i} shared")],
        );
    }
    let docs = env.wait_settled(6);
    assert!(docs.iter().all(|d| d["status"] == "indexed"), "{docs:?}");
    let stats = env.json(&["stats"]);
    assert_eq!(stats["tasks"]["completed"], 18, "{stats}");
    assert_eq!(stats["tasks"]["failed"], 0, "{stats}");
    // The first watches the inbox (an advisory lock on the server); the
    // second only works, and says so.
    let workers_only = "another quire serve is watching the inbox";
    assert!(!first.log_contains(workers_only));
    assert!(second.log_contains(workers_only));
    assert_eq!(env.search(&["shared"]).as_array().unwrap().len(), 6);
}

#[test]
fn work_enqueued_by_another_process_wakes_the_daemon_through_listen_notify() {
    // A poll interval of an hour, longer than any wait of the tests: the
    // daemon's idle worker can only learn of the task by notification.
    let env = Env::postgres().set("QUIRE_QUEUE_POLL_INTERVAL", "1h");
    let daemon = env.serve(&["--workers", "1", "--no-watch"]);
    let file = env.dir.path().join("late.pdf");
    text_pdf(&file, &["arrived later"]);
    env.ok(&["enqueue", file.to_str().unwrap()]);
    let docs = env.wait_settled(1);
    assert_eq!(docs[0]["status"], "indexed");
    drop(daemon);
}

#[test]
fn when_the_daemon_watching_the_inbox_dies_another_takes_over_on_both_engines() {
    for env in [Env::new(), Env::postgres()] {
        let mut first = env.serve(&["--workers", "1"]);
        let second = env.serve(&["--workers", "1"]);
        assert!(second.log_contains("another quire serve is watching the inbox"));
        first.kill();
        crate::util::wait_until("the standby to take the inbox over", || {
            second.log_contains("this one watches it now")
        });
        text_pdf(
            &env.inbox().join("after.pdf"),
            &["dropped after the watcher died"],
        );
        let docs = env.wait_settled(1);
        assert_eq!(docs[0]["name"], "after.pdf");
    }
}

#[test]
fn copy_db_moves_a_sqlite_installation_that_then_lists_and_searches_the_same() {
    let sqlite = Env::new();
    for (name, words) in [("a.pdf", "walrus alpha"), ("b.pdf", "Zürich beta")] {
        let file = sqlite.dir.path().join(name);
        text_pdf(&file, &[words, "second page"]);
        sqlite.ok(&["process", file.to_str().unwrap()]);
    }
    let list = sqlite.json(&["list"]);
    let found = sqlite.search(&["zurich"]);
    let database = quire::db::postgres::testing::TestDatabase::new();
    let url = database.url();
    let out = sqlite.ok(&["copy-db", "--to", &url]);
    assert!(out.contains("database.url = \""), "{out}");
    assert!(out.contains("pages: 4 rows copied"), "{out}");

    let postgres = Env {
        dir: sqlite.dir,
        extra: vec![("QUIRE_DATABASE_URL".into(), url.clone())],
        postgres: Some(database),
    };
    let keep = |v: &serde_json::Value| -> Vec<(serde_json::Value, serde_json::Value)> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|d| (d["id"].clone(), d["status"].clone()))
            .collect()
    };
    assert_eq!(keep(&postgres.json(&["list"])), keep(&list));
    let again = postgres.search(&["zurich"]);
    assert_eq!(again[0]["name"], found[0]["name"]);
    assert_eq!(again[0]["page"], found[0]["page"]);
    // New rows take ids after the copied ones.
    let file = postgres.dir.path().join("c.pdf");
    text_pdf(&file, &["gamma"]);
    postgres.ok(&["process", file.to_str().unwrap()]);
    assert_eq!(postgres.docs()[0]["id"], 3);
    // A second copy into the same, now non-empty, database is refused.
    let refused = postgres.run(&["copy-db", "--to", &url]);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("not empty"), "{err}");
}

#[test]
fn a_server_restart_mid_run_loses_nothing_and_the_daemon_carries_on() {
    let server = crate::util::pgserver::PgServer::start();
    let env = Env::new()
        .set("QUIRE_DATABASE_URL", &server.url())
        .set("QUIRE_QUEUE_HEARTBEAT_INTERVAL", "500ms")
        .set("QUIRE_QUEUE_STALE_TIMEOUT", "3s")
        .set("QUIRE_SCHEDULER_CHECK_INTERVAL", "1s")
        .set("QUIRE_WATCH_RESCAN_INTERVAL", "1s");
    let daemon = env.serve(&["--workers", "2"]);
    let (before, after) = (
        ["walrus", "quokka", "badger", "otter"],
        ["falcon", "heron", "magpie", "raven"],
    );
    for word in before {
        text_pdf(&env.inbox().join(format!("{word}.pdf")), &[word]);
    }
    server.restart();
    for word in after {
        text_pdf(&env.inbox().join(format!("{word}.pdf")), &[word]);
    }
    let docs = env.wait_settled(8);
    assert!(docs.iter().all(|d| d["status"] == "indexed"), "{docs:?}");
    for word in before.iter().chain(&after) {
        let hits = env.search(&[word]);
        assert_eq!(hits.as_array().unwrap().len(), 1, "{word}: {hits}");
    }
    assert!(!daemon.log_contains("panicked"), "{}", daemon.log_text());
    // The daemon felt the restart: its listening connection came back.
    assert!(
        daemon
            .log_text()
            .lines()
            .any(|l| l.contains("listening for changes on") && l.ends_with(" again")),
        "{}",
        daemon.log_text()
    );
    // Still serving after the restart: a file dropped now is read too.
    text_pdf(&env.inbox().join("later.pdf"), &["pelican"]);
    env.wait_settled(9);
}

#[test]
fn a_daemon_frozen_past_stale_timeout_finds_its_claim_taken_and_writes_nothing() {
    // SIGSTOP stands in for a host cut off from the server: it neither
    // heartbeats nor writes, then comes back with a claim it no longer holds.
    let env = Env::postgres()
        .set("QUIRE_QUEUE_HEARTBEAT_INTERVAL", "300ms")
        .set("QUIRE_QUEUE_STALE_TIMEOUT", "2s")
        .set("QUIRE_SCHEDULER_CHECK_INTERVAL", "500ms");
    let cut = env.serve(&["--workers", "1"]);
    let made = env.dir.path().join("made");
    std::fs::create_dir_all(&made).unwrap();
    crate::util::scanned_pdf(&made.join("long.pdf"), 8);
    std::fs::rename(made.join("long.pdf"), env.inbox().join("long.pdf")).unwrap();
    let app = env.app();
    crate::util::wait_until("the first daemon to read a page", || {
        app.store.document(1).ok().flatten().is_some_and(|d| {
            d.ocr_details["pages"]
                .as_object()
                .is_some_and(|p| !p.is_empty())
        })
    });
    cut.signal(libc::SIGSTOP);
    let other = env.serve(&["--workers", "1", "--no-watch"]);
    let docs = env.wait_settled(1);
    assert_eq!(docs[0]["status"], "indexed");
    cut.signal(libc::SIGCONT);
    crate::util::wait_until("the cut-off daemon to find its claim gone", || {
        cut.log_contains("of document 1 was taken by another worker; stopped it")
    });
    let show = env.json(&["show", "1"]);
    let tasks = show["tasks"].as_array().unwrap();
    let ocr: Vec<_> = tasks.iter().filter(|t| t["task_type"] == "ocr").collect();
    assert_eq!(ocr.len(), 1, "{show}");
    assert_eq!(ocr[0]["status"], "completed");
    let owner = format!(":{}:", other.pid());
    assert!(
        ocr[0]["claimed_by"]
            .as_str()
            .is_some_and(|w| w.contains(&owner)),
        "completed by the daemon that took it over: {show}"
    );
    assert_eq!(show["pages"], 8);
    assert_eq!(env.search(&["scanned"]).as_array().unwrap().len(), 1);
    drop(other);
}

#[test]
fn a_watcher_whose_database_session_ends_stands_by_and_one_daemon_watches_again() {
    let env = Env::postgres();
    let first = env.serve(&["--workers", "1"]);
    let second = env.serve(&["--workers", "1"]);
    assert!(second.log_contains("another quire serve is watching the inbox"));
    // The server ends the first daemon's lock session (as a restart or a
    // cut link would), releasing its advisory lock.
    let url = env.postgres.as_ref().unwrap().url();
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    admin
        .batch_execute(
            // pg_locks is the whole server's: only this test's database.
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' \
             AND granted \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .unwrap();
    crate::util::wait_until("the first daemon to stop watching", || {
        first.log_contains("lost the inbox's leader lock")
    });
    crate::util::wait_until("one daemon to watch the inbox again", || {
        first.log_contains("this one watches it now")
            || second.log_contains("this one watches it now")
    });
    text_pdf(
        &env.inbox().join("after.pdf"),
        &["dropped after the session ended"],
    );
    let docs = env.wait_settled(1);
    assert_eq!(docs[0]["name"], "after.pdf");
}

#[test]
fn tls_is_used_as_sslmode_says_and_certificates_are_checked_as_libpq_does() {
    let tls = PgServer::start_with_tls();
    let plain = PgServer::start();
    let ca = tls.certificate();
    let ca = ca.to_str().unwrap();
    // What `quire doctor` says of the database at `url`.
    let doctor = |url: &str| {
        let env = Env::new().set("QUIRE_DATABASE_URL", url);
        let out = env.run(&["doctor"]);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        text.lines()
            .find(|l| l.contains("database"))
            .unwrap_or_else(|| panic!("no database line: {text}"))
            .to_owned()
    };
    let at = |host: &str, server: &PgServer, options: &str| {
        format!(
            "postgres://postgres@{host}:{}/postgres{options}",
            server.port
        )
    };
    for options in [
        "",
        "?sslmode=require",
        &format!("?sslmode=verify-ca&sslrootcert={ca}"),
        &format!("?sslmode=verify-full&sslrootcert={ca}"),
    ] {
        let line = doctor(&at("localhost", &tls, options));
        assert!(
            line.contains("integrity ok, TLS TLSv1"),
            "{options}: {line}"
        );
    }
    // The certificate names localhost, not 127.0.0.1: verify-ca accepts
    // it (the CA signed it), verify-full does not.
    let line = doctor(&at(
        "127.0.0.1",
        &tls,
        &format!("?sslmode=verify-ca&sslrootcert={ca}"),
    ));
    assert!(line.contains("TLS TLSv1"), "{line}");
    let line = doctor(&at(
        "127.0.0.1",
        &tls,
        &format!("?sslmode=verify-full&sslrootcert={ca}"),
    ));
    assert!(line.contains("certificate verify failed"), "{line}");
    // Without the CA, a self-signed certificate is not trusted.
    let line = doctor(&at("localhost", &tls, "?sslmode=verify-full"));
    assert!(line.contains("certificate verify failed"), "{line}");
    let line = doctor(&at("localhost", &tls, "?sslmode=disable"));
    assert!(line.contains("integrity ok, not encrypted"), "{line}");
    // A server without TLS: prefer connects in the clear, require refuses.
    let line = doctor(&at("127.0.0.1", &plain, ""));
    assert!(line.contains("not encrypted"), "{line}");
    let line = doctor(&at("127.0.0.1", &plain, "?sslmode=require"));
    assert!(line.contains("does not support TLS"), "{line}");
}
