//! The web API of `quire serve`, through real HTTP on a real port: the
//! shapes are the CLI's `--json`, errors are JSON with their status, and
//! the hostile cases (foreign hosts, cross-site writes, path traversal,
//! oversized uploads, a port in use, a missing token) are refused.

use serde_json::Value;

use crate::util::{Daemon, Env, text_pdf, wait_until};

/// A daemon with its web page on a free loopback port.
pub struct Web {
    pub daemon: Daemon,
    pub base: String,
    agent: ureq::Agent,
}

/// What a request got back.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl Web {
    /// `quire serve ARGS --http 127.0.0.1:0` (unless ARGS name an address).
    pub fn start(env: &Env, args: &[&str]) -> Web {
        let mut all = args.to_vec();
        if !args.contains(&"--http") {
            all.extend(["--http", "127.0.0.1:0"]);
        }
        let daemon = env.serve(&all);
        let log = daemon.log_text();
        let addr = log
            .split("web page on http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("no web page address in the log:\n{log}"))
            .to_owned();
        Web {
            daemon,
            base: format!("http://{addr}"),
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .max_redirects(0)
                .build()
                .into(),
        }
    }

    pub fn get(&self, path: &str) -> Reply {
        self.get_with(path, &[])
    }

    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut req = self.agent.get(format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        reply(req.call())
    }

    pub fn post(&self, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        let mut req = self.agent.post(format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        reply(req.send(body))
    }

    /// Uploads `files` (name, content) as one multipart form to `path`.
    pub fn upload(&self, path: &str, files: &[(&str, &[u8])], headers: &[(&str, &str)]) -> Reply {
        let boundary = "quire-test-boundary-7MA4YWxkTrZu0gW";
        let mut body = vec![];
        for (name, content) in files {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; \
                     filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(content);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        let content_type = format!("multipart/form-data; boundary={boundary}");
        let mut all = vec![("content-type", content_type.as_str())];
        all.extend_from_slice(headers);
        self.post(path, &all, &body)
    }
}

fn reply(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
    let mut r = r.expect("the request reached the server");
    let headers = r
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let status = r.status().as_u16();
    let body = r
        .body_mut()
        .with_config()
        .limit(64 * 1024 * 1024)
        .read_to_vec()
        .unwrap_or_default();
    Reply {
        status,
        headers,
        body,
    }
}

/// A text-layer PDF (read without OCR) saying `words`, as bytes.
fn pdf_saying(env: &Env, words: &str) -> Vec<u8> {
    let path = env.dir.path().join(format!("{}.pdf", words.len()));
    text_pdf(&path, &[words]);
    std::fs::read(path).unwrap()
}

#[test]
fn the_api_answers_in_the_shapes_of_the_command_line() {
    let env = Env::new();
    let web = Web::start(&env, &["--workers", "1"]);
    text_pdf(
        &env.inbox().join("invoice.pdf"),
        &["quarterly zanzibar invoice"],
    );
    text_pdf(
        &env.inbox().join("letter.pdf"),
        &["a letter about zanzibar"],
    );
    env.wait_settled(2);

    let api = web.get("/api/search?q=zanzibar");
    assert_eq!(api.status, 200);
    let api = api.json();
    assert_eq!(api["results"], env.json(&["search", "zanzibar"]));
    assert_eq!(api["total"], 2);
    let pages = web.get("/api/search?q=quarterly&pages=true").json();
    assert_eq!(
        pages["results"],
        env.json(&["search", "quarterly", "--pages"])
    );

    // Dates filter as `--since` and `--until` do.
    let since = web.get("/api/search?q=zanzibar&since=2000-01-01").json();
    assert_eq!(
        since["results"],
        env.json(&["search", "zanzibar", "--since", "2000-01-01"])
    );
    assert_eq!(since["total"], 2);
    let until = web.get("/api/search?q=zanzibar&until=2000-01-01").json();
    assert_eq!(until["total"], 0);
    assert_eq!(until["results"], Value::Array(vec![]));

    assert_eq!(web.get("/api/documents").json(), env.json(&["list"]));
    assert_eq!(
        web.get("/api/documents?poor=true").json(),
        env.json(&["list", "--poor"])
    );
    assert_eq!(
        web.get("/api/documents?status=indexed&limit=1").json(),
        Value::Array(vec![env.json(&["list"])[0].clone()])
    );
    assert_eq!(web.get("/api/documents/1").json(), env.json(&["show", "1"]));
    let text = web.get("/api/documents/1/text").json();
    assert!(
        text["pages"][0]["text"]
            .as_str()
            .unwrap()
            .contains("zanzibar")
    );
    let stats = web.get("/api/stats").json();
    assert_eq!(stats["documents"], env.json(&["stats"])["documents"]);

    // The original, byte for byte, under its original name.
    let original = web.get("/api/documents/1/original");
    assert_eq!(original.status, 200);
    let id1 = env.json(&["show", "1"]);
    let stored = std::fs::read(id1["file"].as_str().unwrap()).unwrap();
    assert_eq!(original.body, stored);
    let disposition = original.header("content-disposition").unwrap();
    let name = id1["name"].as_str().unwrap();
    assert!(
        disposition.contains(&format!("filename=\"{name}\"")),
        "{disposition}"
    );

    // The searchable PDF, once written.
    wait_until("the searchable PDF", || {
        env.json(&["show", "1"])["searchable_pdf"].is_string()
    });
    let pdf = web.get("/doc/1/pdf");
    assert_eq!(pdf.status, 200);
    assert!(pdf.body.starts_with(b"%PDF-"));
    assert_eq!(pdf.header("content-type"), Some("application/pdf"));

    let health = web.get("/healthz");
    assert_eq!((health.status, health.text().trim()), (200, "ok"));
}

#[test]
fn bad_requests_get_json_errors_with_their_status() {
    let env = Env::new().set("QUIRE_QUEUE_ENABLED", "false");
    let web = Web::start(&env, &[]);
    for (path, status) in [
        ("/api/documents/abc", 400),
        ("/api/documents/-1", 400),
        ("/api/documents/99", 404),
        ("/api/documents/99/original", 404),
        ("/api/search?q=", 400),
        ("/api/search?q=-alone", 400),
        ("/api/search?q=%22unclosed&raw=true", 400),
        ("/api/documents?status=nonsense", 400),
        ("/api/tasks?status=nonsense", 400),
        ("/api/documents?limit=abc", 400),
        ("/api/search?q=x&pages=maybe", 400),
        ("/api/search?q=x&since=yesterday", 400),
        ("/api/documents?poor=maybe", 400),
        ("/api/upload", 405),
        ("/api/no/such/thing", 404),
    ] {
        let r = web.get(path);
        assert_eq!(r.status, status, "{path}: {}", r.text());
        let message = r.json()["error"].as_str().unwrap_or_default().to_owned();
        assert!(!message.is_empty(), "{path}: no message");
    }
    // A task in the wrong state: 409, saying which.
    let doc = Web::upload_one(&web, "a.pdf", &pdf_saying(&env, "conflict words"));
    let retry = web.post(&format!("/api/tasks/{doc}/retry"), &[], b"");
    assert_eq!(retry.status, 409, "{}", retry.text());
    let why = retry.json()["error"].as_str().unwrap().to_owned();
    assert!(why.contains("pending"), "{why}");
    // A page not read yet has no image.
    assert_eq!(web.get(&format!("/doc/{doc}/page/1")).status, 404);
    // The pages answer errors as pages.
    for (path, status, says) in [
        ("/doc/99", 404, "no document with id 99"),
        ("/no/such/page", 404, "no such page"),
        ("/queue/1/explode", 400, "retry or cancel"),
    ] {
        let r = if path.starts_with("/queue") {
            web.post(path, &[], b"")
        } else {
            web.get(path)
        };
        assert_eq!(r.status, status, "{path}");
        assert!(
            r.header("content-type").unwrap().starts_with("text/html"),
            "{path}: {}",
            r.text()
        );
        assert!(r.text().contains(says), "{path}: {}", r.text());
    }
}

impl Web {
    /// Uploads one file through the API; returns its document id.
    fn upload_one(&self, name: &str, content: &[u8]) -> i64 {
        let r = self.upload("/api/upload", &[(name, content)], &[]);
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()[0]["id"].as_i64().unwrap()
    }
}

#[test]
fn path_traversal_reads_and_writes_nothing_outside_the_data_dir() {
    let env = Env::new().set("QUIRE_QUEUE_ENABLED", "false");
    let web = Web::start(&env, &[]);
    for path in [
        "/doc/..%2F..%2F..%2Fetc%2Fpasswd/original",
        "/doc/1/original/../../../../etc/passwd",
        "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/api/documents/..%2f..%2fetc%2fpasswd",
        "/doc/1/page/..%2F..%2Fetc%2Fpasswd",
        "/static/../../../../etc/passwd",
    ] {
        let r = web.get(path);
        assert!(r.status >= 400, "{path} answered {}", r.status);
        assert!(!r.text().contains("root:x:0:0"), "{path} read /etc/passwd");
    }
    // An upload named with folders is stored under its last part only.
    let escape = env.dir.path().join("escaped.pdf");
    let r = web.upload(
        "/api/upload",
        &[("../../escaped.pdf", &pdf_saying(&env, "traversal words"))],
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()[0]["name"], "escaped.pdf");
    assert!(!escape.exists());
    assert!(!env.data().parent().unwrap().join("escaped.pdf").exists());
}

#[test]
fn uploads_are_ingested_like_drops_and_bounded_in_size() {
    let env = Env::new().set("QUIRE_HTTP_UPLOAD_LIMIT_MB", "1");
    let web = Web::start(&env, &["--workers", "1"]);
    let pdf = pdf_saying(&env, "uploaded xylophone sonata");
    let first = web
        .upload("/api/upload", &[("sonata.pdf", &pdf)], &[])
        .json();
    assert_eq!(first[0]["duplicate"], false);
    let id = first[0]["id"].as_i64().unwrap();
    wait_until("the upload to be searchable", || {
        web.get("/api/search?q=xylophone").json()["total"] == 1
    });
    // The same content again: the same document, marked duplicate.
    let again = web.upload("/api/upload", &[("copy.pdf", &pdf)], &[]).json();
    assert_eq!(
        (again[0]["id"].as_i64(), &again[0]["duplicate"]),
        (Some(id), &Value::Bool(true))
    );
    assert_eq!(env.docs().len(), 1);
    // Over the limit: 413, nothing stored, nothing left behind.
    let big = vec![b'x'; 2 * 1024 * 1024];
    let r = web.upload("/api/upload", &[("big.bin", &big)], &[]);
    assert_eq!(r.status, 413, "{}", r.text());
    // The rest of the body was not read, so the connection is not reused.
    assert_eq!(r.header("connection"), Some("close"));
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("upload_limit_mb")
    );
    assert_eq!(env.docs().len(), 1);
    let uploads = std::fs::read_dir(env.data().join(".uploads"))
        .unwrap()
        .count();
    assert_eq!(uploads, 0, "temporary uploads are removed");
    // An upload with no file in it.
    let empty = web.post(
        "/api/upload",
        &[("content-type", "multipart/form-data; boundary=x")],
        b"--x--\r\n",
    );
    assert_eq!(empty.status, 400, "{}", empty.text());
}

#[test]
fn writes_from_other_sites_and_foreign_hosts_are_refused() {
    let env = Env::new().set("QUIRE_QUEUE_ENABLED", "false");
    let web = Web::start(&env, &[]);
    let pdf = pdf_saying(&env, "cross site words");
    let evil = [("origin", "http://evil.example")];
    let r = web.upload("/api/upload", &[("x.pdf", &pdf)], &evil);
    assert_eq!(r.status, 403, "{}", r.text());
    let r = web.post(
        "/api/tasks/1/cancel",
        &[("sec-fetch-site", "cross-site")],
        b"",
    );
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(env.docs().is_empty());
    // The site's own pages may write.
    let host = web.base.trim_start_matches("http://").to_owned();
    let own = format!("http://{host}");
    let r = web.upload(
        "/api/upload",
        &[("x.pdf", &pdf)],
        &[("origin", own.as_str())],
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = web.post("/queue/1/cancel", &[("sec-fetch-site", "same-origin")], b"");
    assert_eq!(r.status, 303, "{}", r.text());
    assert_eq!(env.docs()[0]["status"], "cancelled");
    // DNS rebinding: a page of another name resolving to 127.0.0.1.
    let r = web.get_with("/api/documents", &[("host", "evil.example")]);
    assert_eq!(r.status, 421, "{}", r.text());
}

#[test]
fn beyond_loopback_the_token_is_required() {
    let env = Env::new();
    // Without a token, serve refuses to listen on every address.
    let out = env
        .cmd()
        .args(["serve", "--workers", "1", "--http", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("http.token_file"), "{err}");

    let token_file = env.dir.path().join("token");
    std::fs::write(&token_file, "s3cret-token\n").unwrap();
    let env = env.set("QUIRE_HTTP_TOKEN_FILE", token_file.to_str().unwrap());
    let web = Web::start(&env, &["--workers", "1", "--http", "0.0.0.0:0"]);
    let port = web.base.rsplit(':').next().unwrap().to_owned();
    let web = Web {
        base: format!("http://127.0.0.1:{port}"),
        ..web
    };
    let denied = web.get("/api/stats");
    assert_eq!(denied.status, 401);
    assert!(
        denied
            .header("www-authenticate")
            .unwrap()
            .starts_with("Basic")
    );
    assert_eq!(
        web.get_with("/api/stats", &[("authorization", "Bearer wrong")])
            .status,
        401
    );
    assert_eq!(
        web.get_with("/api/stats", &[("authorization", "Bearer s3cret-token")])
            .status,
        200
    );
    // Basic auth, any user: "me:s3cret-token".
    let basic = [("authorization", "Basic bWU6czNjcmV0LXRva2Vu")];
    assert_eq!(web.get_with("/api/stats", &basic).status, 200);
    // Any host name is fine with the token.
    let named = [
        ("authorization", "Bearer s3cret-token"),
        ("host", "scanner.lan"),
    ];
    assert_eq!(web.get_with("/api/stats", &named).status, 200);
    // The health check needs none.
    assert_eq!(web.get("/healthz").status, 200);
}

#[test]
fn a_port_in_use_stops_serve_with_advice() {
    let env = Env::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = env
        .cmd()
        .args(["serve", "--workers", "1", "--http", &addr])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");
    assert!(err.contains("--http"), "{err}");
    // A bad address is a configuration error.
    let out = env
        .cmd()
        .args(["serve", "--http", "localhost"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("http.listen"));
}

#[test]
fn metrics_parse_and_their_counters_move() {
    let env = Env::new();
    let web = Web::start(&env, &["--workers", "1"]);
    let scrape = || {
        let r = web.get("/metrics");
        assert_eq!(r.status, 200);
        assert!(r.header("content-type").unwrap().starts_with("text/plain"));
        let lines = r
            .text()
            .lines()
            .map(|l| Ok(l.to_owned()))
            .collect::<Vec<_>>();
        prometheus_parse::Scrape::parse(lines.into_iter()).expect("Prometheus text format")
    };
    let value = |s: &prometheus_parse::Scrape, name: &str, label: (&str, &str)| -> f64 {
        s.samples
            .iter()
            .filter(|m| m.metric == name && m.labels.get(label.0) == Some(label.1))
            .map(|m| match m.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => 0.0,
            })
            .sum()
    };
    let before = scrape();
    assert_eq!(
        value(&before, "quire_documents", ("status", "indexed")),
        0.0
    );
    let pdf = pdf_saying(&env, "metric words here");
    web.upload("/api/upload", &[("m.pdf", &pdf)], &[]);
    std::fs::write(env.inbox().join("dropped.txt"), "a dropped text file").unwrap();
    env.wait_settled(2);
    let after = scrape();
    assert_eq!(value(&after, "quire_documents", ("status", "indexed")), 2.0);
    assert!(value(&after, "quire_tasks_completed_total", ("type", "ocr")) >= 2.0);
    assert!(value(&after, "quire_tasks_completed_total", ("type", "indexing")) >= 2.0);
    assert_eq!(
        value(&after, "quire_ingested_total", ("outcome", "new")),
        2.0
    );
    assert!(value(&after, "quire_pages_read_total", ("source", "text")) >= 1.0);
    // Completed OCR and indexing tasks, counted from the database (the
    // searchable PDF tasks may still run).
    assert!(value(&after, "quire_tasks", ("status", "completed")) >= 4.0);
    assert_eq!(value(&after, "quire_tasks", ("status", "failed")), 0.0);
    for name in [
        "quire_oldest_pending_seconds",
        "quire_worker_busy_ratio",
        "quire_workers",
    ] {
        assert!(
            after.samples.iter().any(|m| m.metric == name),
            "{name} missing"
        );
    }
    assert!(after.samples.iter().all(|m| m.metric.starts_with("quire_")));
    let text = web.get("/metrics").text();
    assert!(
        text.contains("# HELP quire_tasks_completed_total"),
        "{text}"
    );
    assert!(
        text.contains("quire_ocr_page_seconds_bucket") || !text.contains("quire_ocr_page_seconds")
    );
}

#[test]
fn failed_tasks_are_listed_and_retried_through_the_api() {
    let env = Env::new().set("QUIRE_QUEUE_MAX_ATTEMPTS", "1");
    let web = Web::start(&env, &["--workers", "1"]);
    // A PDF that cannot be opened fails for good.
    std::fs::write(
        env.inbox().join("broken.pdf"),
        b"%PDF-1.4\nnot really a pdf\n",
    )
    .unwrap();
    env.wait_settled(1);
    let failed = web.get("/api/tasks?status=failed").json();
    let task = failed[0]["id"].as_i64().unwrap();
    assert_eq!(failed[0]["task_type"], "ocr");
    let r = web.post(&format!("/api/tasks/{task}/retry"), &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["retried"], task);
    wait_until("the retried task to fail again", || {
        env.json(&["show", "1"])["tasks"][0]["attempts"] == 1
            && env.docs()[0]["status"] == "failed"
            && web.get("/api/tasks?status=failed").json()[0]["id"] == task
    });
    // The queue page lists it with a retry button.
    let page = web.get("/queue").text();
    assert!(page.contains(&format!("/queue/{task}/retry")), "{page}");
}

#[test]
fn the_live_view_streams_snapshots() {
    let env = Env::new().set("QUIRE_QUEUE_ENABLED", "false");
    let web = Web::start(&env, &[]);
    text_pdf(&env.inbox().join("live.pdf"), &["live words"]);
    wait_until("the document to be listed", || env.docs().len() == 1);
    // Read the stream until the first snapshot that lists the document.
    let stream = std::net::TcpStream::connect(web.base.trim_start_matches("http://")).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    use std::io::{BufRead, Write};
    (&stream)
        .write_all(b"GET /events HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n")
        .unwrap();
    let mut lines = std::io::BufReader::new(&stream).lines();
    let snapshot = loop {
        let line = lines.next().expect("the stream stays open").unwrap();
        if let Some(data) = line.strip_prefix("data: ") {
            let v: Value = serde_json::from_str(data).unwrap();
            if v["recent"].as_array().is_some_and(|r| !r.is_empty()) {
                break v;
            }
        }
    };
    assert_eq!(snapshot["recent"][0]["name"], "live.pdf");
    assert_eq!(snapshot["stats"]["documents"]["total"], 1);
    // The home page shows the same, without JavaScript.
    let home = web.get("/").text();
    assert!(home.contains("live.pdf"), "{home}");
}

#[test]
fn hundreds_of_stalled_connections_and_a_request_storm_leave_the_workers_alone() {
    let env = Env::new();
    let web = Web::start(&env, &["--workers", "1"]);
    let addr = web.base.trim_start_matches("http://").to_owned();
    // More connections than the server serves at once, each stalled in the
    // middle of its request headers (a slowloris).
    let stalled: Vec<std::net::TcpStream> = (0..600)
        .map(|_| {
            use std::io::Write;
            let mut s = std::net::TcpStream::connect(&addr).unwrap();
            s.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
                .unwrap();
            s
        })
        .collect();
    // The workers go on: a dropped file is read and indexed.
    text_pdf(
        &env.inbox().join("during.pdf"),
        &["written during the siege"],
    );
    assert_eq!(env.wait_settled(1)[0]["status"], "indexed");
    drop(stalled);
    // Freed, the server answers again, and a storm of requests is served.
    wait_until("the server to answer again", || {
        web.get("/healthz").status == 200
    });
    let answered: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|_| {
                s.spawn(|| {
                    (0..25)
                        .filter(|i| {
                            let path =
                                ["/", "/api/search?q=siege", "/metrics", "/api/stats"][i % 4];
                            web.get(path).status == 200
                        })
                        .count()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(answered, 400);
}

#[test]
fn tiff_pages_are_shown_as_png_with_their_word_boxes() {
    let env = Env::new();
    let web = Web::start(&env, &["--workers", "1"]);
    let staged = env.dir.path().join("two.tiff");
    crate::util::tiff_pages(&staged, 2);
    std::fs::rename(&staged, env.inbox().join("two.tiff")).unwrap();
    assert_eq!(env.wait_settled(1)[0]["status"], "indexed");
    for path in ["/doc/1/page/2", "/doc/1/thumb/1"] {
        let r = web.get(path);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert_eq!(r.header("content-type"), Some("image/png"));
        assert!(r.body.starts_with(b"\x89PNG\r\n\x1a\n"), "{path}");
        // Served again from the cache, and revalidated by its tag.
        let tag = r.header("etag").unwrap().to_owned();
        assert_eq!(web.get_with(path, &[("if-none-match", &tag)]).status, 304);
    }
    assert_eq!(web.get("/doc/1/page/3").status, 404);
    // The page shows both images, and a box over the searched word.
    let page = web.get("/doc/1?q=number").text();
    assert!(page.contains("/doc/1/page/2"), "{page}");
    assert_eq!(page.matches("class=\"box\"").count(), 2, "{page}");
    // `rm` takes the rendered pages with the document.
    let cache = env.data().join(".cache/pages");
    assert!(std::fs::read_dir(&cache).unwrap().count() >= 2);
    env.ok(&["rm", "1"]);
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 0);
}
