//! Several hosts on one PostgreSQL queue: daemons in network and UTS
//! namespaces of their own ([`crate::util::netns`]), each reaching a private
//! server over its own veth link with its own hostname, sharing one data
//! dir. The checks from this side run over loopback.

use serde_json::Value;

use crate::util::netns::Host;
use crate::util::pgserver::PgServer;
use crate::util::{Daemon, Env, scanned_pdf, text_pdf, wait_until};

/// A server the hosts reach, an env whose commands reach it over loopback,
/// and a fast heartbeat and stale timeout so that takeovers happen within
/// seconds.
fn cluster(hosts: usize) -> (PgServer, Vec<Host>, Env) {
    let server = PgServer::start_for_hosts();
    let env = Env::new()
        .set("QUIRE_DATABASE_URL", &server.url())
        .set("QUIRE_QUEUE_HEARTBEAT_INTERVAL", "300ms")
        .set("QUIRE_QUEUE_STALE_TIMEOUT", "2s")
        .set("QUIRE_SCHEDULER_CHECK_INTERVAL", "500ms");
    (server, Host::many(hosts), env)
}

/// `quire serve` on `host`, reaching the server at its end of the link.
fn serve(env: &Env, server: &PgServer, host: &Host, args: &[&str]) -> Daemon {
    let url = format!(
        "postgres://postgres@{}:{}/postgres",
        host.gateway, server.port
    );
    env.serve_on(host, &url, args)
}

/// Drops `name` (written beside the inbox first, so it arrives whole).
fn drop_in(env: &Env, name: &str, write: impl FnOnce(&std::path::Path)) {
    let made = env.dir.path().join("made");
    std::fs::create_dir_all(&made).unwrap();
    write(&made.join(name));
    std::fs::rename(made.join(name), env.inbox().join(name)).unwrap();
}

/// The id of the document called `name`, once it is in.
fn doc_id(env: &Env, name: &str) -> String {
    let mut id = None;
    wait_until(&format!("{name} to be taken in"), || {
        id = env
            .docs()
            .iter()
            .find(|d| d["name"] == name)
            .map(|d| d["id"].to_string());
        id.is_some()
    });
    id.unwrap()
}

/// The pages of a document that are read, from `quire show`.
fn pages_done(env: &Env, id: &str) -> usize {
    env.json(&["show", id])["ocr_details"]["pages"]
        .as_object()
        .map_or(0, |p| p.values().filter(|p| p["status"] == "done").count())
}

/// The document's task of type `ty` (asserting there is exactly one).
fn only_task(show: &Value, ty: &str) -> Value {
    let tasks: Vec<&Value> = show["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["task_type"] == ty)
        .collect();
    assert_eq!(tasks.len(), 1, "one {ty} task: {show}");
    tasks[0].clone()
}

/// How often each daemon's log says page `n` of `pages` was read.
fn reads_of_page(daemons: &[&Daemon], n: usize, pages: usize) -> usize {
    daemons
        .iter()
        .map(|d| d.log_text().matches(&format!("page {n}/{pages}:")).count())
        .sum()
}

#[test]
fn three_hosts_read_a_corpus_once_and_a_killed_hosts_claim_is_taken_over_by_heartbeat() {
    let (server, hosts, env) = cluster(3);
    let mut daemons: Vec<Daemon> = hosts
        .iter()
        .map(|h| serve(&env, &server, h, &["--workers", "1"]))
        .collect();
    // Only one host watches the inbox; the others only work.
    let watching = daemons
        .iter()
        .filter(|d| !d.log_contains("another quire serve is watching the inbox"))
        .count();
    assert_eq!(watching, 1);
    // Long enough that its holder is still reading it when killed (6 pages
    // were once all read in the moment between the wait and the kill).
    const PAGES: usize = 20;
    drop_in(&env, "long.pdf", |p| scanned_pdf(p, PAGES));
    let words = ["walrus", "quokka", "badger", "otter", "falcon"];
    for word in words {
        drop_in(&env, &format!("{word}.pdf"), |p| {
            text_pdf(p, &[&format!("{word} on its own host")])
        });
    }
    let long = doc_id(&env, "long.pdf");
    wait_until("two pages of the long document to be read", || {
        pages_done(&env, &long) >= 2
    });
    // SIGKILL the host reading it: no process on the others can tell it is
    // dead, so only its stopped heartbeat can free the claim.
    let holder = only_task(&env.json(&["show", &long]), "ocr")["claimed_by"]
        .as_str()
        .unwrap()
        .to_string();
    let victim = hosts
        .iter()
        .position(|h| holder.starts_with(&format!("{}:", h.name)))
        .unwrap_or_else(|| panic!("claimed by a worker of no test host: {holder}"));
    daemons[victim].kill();
    let done_before = pages_done(&env, &long);
    let at_kill = only_task(&env.json(&["show", &long]), "ocr");
    assert_ne!(
        at_kill["status"], "completed",
        "the kill came too late: {at_kill}"
    );

    let docs = env.wait_settled(1 + words.len());
    assert!(docs.iter().all(|d| d["status"] == "indexed"), "{docs:?}");
    for d in &docs {
        let show = env.json(&["show", &d["id"].to_string()]);
        for ty in ["ocr", "indexing"] {
            assert_eq!(only_task(&show, ty)["status"], "completed", "{show}");
        }
    }
    let ocr = only_task(&env.json(&["show", &long]), "ocr");
    let finisher = ocr["claimed_by"].as_str().unwrap();
    assert!(
        !finisher.starts_with(&format!("{}:", hosts[victim].name)),
        "finished on another host: {ocr}"
    );
    let all: Vec<&Daemon> = daemons.iter().collect();
    let survivors: Vec<&Daemon> = (0..3)
        .filter(|&i| i != victim)
        .map(|i| &daemons[i])
        .collect();
    assert!(
        survivors
            .iter()
            .any(|d| d.log_contains("released 1 stale and 0 dead claim(s)")),
        "released by its heartbeat's age"
    );
    for d in &survivors {
        let dead = d.log_text().lines().any(|l| {
            l.split("stale and ")
                .nth(1)
                .is_some_and(|rest| !rest.starts_with("0 dead"))
        });
        assert!(!dead, "a claim of another host released by process id");
    }
    // The pages read before the kill were kept, and no page was read twice
    // (a page is logged once it is saved).
    assert!(done_before >= 2);
    for n in 1..=PAGES {
        assert_eq!(
            reads_of_page(&all, n, PAGES),
            1,
            "page {n} of the long document"
        );
    }
    for word in words.iter().chain(&["scanned"]) {
        let hits = env.search(&[word]);
        assert_eq!(hits.as_array().unwrap().len(), 1, "{word}: {hits}");
    }
    for d in &survivors {
        assert!(!d.log_contains("panicked"), "{}", d.log_text());
    }
}

#[test]
fn a_host_cut_off_past_stale_timeout_has_its_late_writes_refused() {
    let (server, hosts, env) = cluster(2);
    let cut_off = serve(&env, &server, &hosts[0], &["--workers", "1"]);
    // Long enough that the first host is still reading it when cut off.
    const PAGES: usize = 20;
    drop_in(&env, "long.pdf", |p| scanned_pdf(p, PAGES));
    let long = doc_id(&env, "long.pdf");
    wait_until("the first host to read a page", || {
        pages_done(&env, &long) >= 1
    });
    hosts[0].cut();
    let other = serve(&env, &server, &hosts[1], &["--workers", "1"]);
    // The other host releases the silent claim by the server's clock, and
    // reads the rest; then the link comes back.
    wait_until("the other host to take the task over", || {
        only_task(&env.json(&["show", &long]), "ocr")["claimed_by"]
            .as_str()
            .is_some_and(|w| w.starts_with(&format!("{}:", hosts[1].name)))
    });
    hosts[0].restore();
    let docs = env.wait_settled(1);
    assert_eq!(docs[0]["status"], "indexed");
    wait_until("the cut-off host to find its claim gone", || {
        cut_off.log_contains("was taken by another worker; stopped it")
    });
    let show = env.json(&["show", &long]);
    let ocr = only_task(&show, "ocr");
    assert_eq!(ocr["status"], "completed", "{show}");
    assert!(
        ocr["claimed_by"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}:", hosts[1].name))
    );
    assert_eq!(show["pages"], PAGES);
    // Each page was saved once, by whichever host held the claim then: the
    // cut-off host's late page was refused.
    for n in 1..=PAGES {
        assert_eq!(
            reads_of_page(&[&cut_off, &other], n, PAGES),
            1,
            "page {n}:\n{}\n{}",
            cut_off.log_text(),
            other.log_text()
        );
    }
    assert_eq!(env.search(&["scanned"]).as_array().unwrap().len(), 1);
    assert!(!cut_off.log_contains("panicked"), "{}", cut_off.log_text());
}

#[test]
fn every_host_reconnects_after_a_server_restart_and_nothing_is_lost() {
    let (server, hosts, env) = cluster(3);
    let daemons: Vec<Daemon> = hosts
        .iter()
        .map(|h| serve(&env, &server, h, &["--workers", "1"]))
        .collect();
    let (before, after) = (
        ["walrus", "quokka", "badger", "otter"],
        ["falcon", "heron", "magpie", "raven"],
    );
    for word in before {
        drop_in(&env, &format!("{word}.pdf"), |p| text_pdf(p, &[word]));
    }
    server.restart();
    for word in after {
        drop_in(&env, &format!("{word}.pdf"), |p| text_pdf(p, &[word]));
    }
    let docs = env.wait_settled(8);
    assert!(docs.iter().all(|d| d["status"] == "indexed"), "{docs:?}");
    for word in before.iter().chain(&after) {
        let hits = env.search(&[word]);
        assert_eq!(hits.as_array().unwrap().len(), 1, "{word}: {hits}");
    }
    for d in &daemons {
        wait_until("each host's listening connection to come back", || {
            d.log_text()
                .lines()
                .any(|l| l.contains("listening for changes on") && l.ends_with(" again"))
        });
        assert!(!d.log_contains("panicked"), "{}", d.log_text());
    }
}
