//! The web page in a real browser: Debian's Chromium, headless, driven over
//! the DevTools protocol (headless_chrome). One person's session: search
//! from the home page, open the best document, see the found word boxed on
//! the page image, download the original, upload a file and find it, retry
//! a failed task. A screenshot of each step goes to `target/browser/`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use headless_chrome::protocol::cdp::{DOM, Page};
use headless_chrome::{Browser, LaunchOptions, Tab};
use sha2::{Digest, Sha256};

use crate::http::Web;
use crate::util::{Env, text_pdf, text_png, wait_until};

/// Where the screenshots go, for people to look at.
fn shots() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Saves a screenshot of the tab as `name`, once the page in it can be
/// drawn (mid-navigation, Chromium answers "Not attached to an active page").
fn screenshot(tab: &Tab, name: &str) {
    let mut png = None;
    wait_until(&format!("a screenshot for {name}"), || {
        png = tab
            .capture_screenshot(Page::CaptureScreenshotFormatOption::Png, None, None, true)
            .ok();
        png.is_some()
    });
    std::fs::write(shots().join(name), png.unwrap()).unwrap();
}

fn browser() -> Browser {
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("chromium is installed (scripts/setup.sh --test installs it)");
    let options = LaunchOptions::default_builder()
        .path(Some(chromium))
        .headless(true)
        // Root in a container has no user namespaces for the sandbox.
        .sandbox(false)
        .window_size(Some((1280, 1000)))
        .idle_browser_timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    Browser::new(options).expect("chromium starts")
}

/// Runs `js` (an expression, awaited if a promise) and returns its value.
fn eval(tab: &Tab, js: &str) -> serde_json::Value {
    tab.evaluate(js, true)
        .unwrap_or_else(|e| panic!("{js}: {e}"))
        .value
        .unwrap_or(serde_json::Value::Null)
}

/// Waits until `js` evaluates to true.
fn wait_for_js(tab: &Tab, what: &str, js: &str) {
    wait_until(what, || eval(tab, js) == serde_json::Value::Bool(true));
}

#[test]
fn search_look_download_upload_and_retry_in_a_real_browser() {
    let env = Env::new().set("QUIRE_QUEUE_MAX_ATTEMPTS", "1");
    let web = Web::start(&env, &["--workers", "2"]);
    // A scan (OCR'd, so its words have boxes), a text-layer PDF that
    // mentions the word in passing, and a file that fails.
    text_png(
        &env.inbox().join("zephyr invoice.png"),
        &[
            "INVOICE 4711",
            "Zephyrine Trading Company",
            "Total due 300 EUR",
        ],
    );
    text_pdf(
        &env.inbox().join("notes.pdf"),
        &["meeting notes, nothing about the invoice"],
    );
    std::fs::write(env.inbox().join("broken.pdf"), b"%PDF-1.4\nnot a pdf\n").unwrap();
    env.wait_settled(3);

    let browser = browser();
    let tab: Arc<Tab> = browser.new_tab().unwrap();
    tab.set_default_timeout(Duration::from_secs(60));

    // Search from the home page: type, press Enter.
    tab.navigate_to(&format!("{}/", web.base))
        .unwrap()
        .wait_until_navigated()
        .unwrap();
    tab.wait_for_element("#recent a").unwrap();
    screenshot(&tab, "0-home.png");
    tab.wait_for_element("input[name=q]")
        .unwrap()
        .click()
        .unwrap();
    tab.type_str("zephyrine")
        .unwrap()
        .press_key("Enter")
        .unwrap();
    tab.wait_until_navigated().unwrap();
    let first = tab.wait_for_element(".hit h3 a").unwrap();
    assert_eq!(first.get_inner_text().unwrap(), "zephyr invoice.png");
    wait_for_js(
        &tab,
        "the thumbnail",
        "document.querySelector('.hit img.thumb')?.complete === true && document.querySelector('.hit img.thumb').naturalWidth > 0",
    );
    screenshot(&tab, "1-search.png");

    // Open it: the page image, with a box over the found word.
    first.click().unwrap();
    tab.wait_for_element(".scan img").unwrap();
    wait_for_js(
        &tab,
        "the page image to load",
        "document.querySelector('.scan img').complete && document.querySelector('.scan img').naturalWidth > 0",
    );
    let boxes = eval(&tab, "document.querySelectorAll('.scan .box').length");
    assert_eq!(boxes, 1, "one box over \"Zephyrine\"");
    // The box lies within the page, on the second line of text.
    let top = eval(
        &tab,
        "parseFloat(document.querySelector('.scan .box').style.top)",
    );
    let top = top.as_f64().unwrap();
    assert!((5.0..60.0).contains(&top), "box top at {top}%");
    assert_eq!(
        eval(&tab, "document.querySelectorAll('pre mark').length"),
        1
    );
    screenshot(&tab, "2-document.png");

    // Download the original through the page's link; same bytes.
    let sha = eval(
        &tab,
        "fetch(document.querySelector('a[href$=\"/original\"]').href)\
           .then(r => r.arrayBuffer()).then(b => crypto.subtle.digest('SHA-256', b))\
           .then(d => Array.from(new Uint8Array(d)).map(x => x.toString(16).padStart(2, '0')).join(''))",
    );
    let stored = env.json(&["show", "1"])["file"]
        .as_str()
        .unwrap()
        .to_owned();
    let want = format!("{:x}", Sha256::digest(std::fs::read(stored).unwrap()));
    assert_eq!(sha.as_str().unwrap(), want);

    // Upload through the home page's form; the file becomes searchable.
    let upload = env.dir.path().join("quarterly report.pdf");
    text_pdf(&upload, &["the quarterly marmalade report"]);
    tab.navigate_to(&format!("{}/", web.base))
        .unwrap()
        .wait_until_navigated()
        .unwrap();
    let input = tab.wait_for_element("input[type=file]").unwrap();
    tab.call_method(DOM::SetFileInputFiles {
        files: vec![upload.to_string_lossy().into_owned()],
        node_id: None,
        backend_node_id: Some(input.backend_node_id),
        object_id: None,
    })
    .unwrap();
    tab.wait_for_element("#drop button[type=submit]")
        .unwrap()
        .click()
        .unwrap();
    wait_until("the upload to open its document page", || {
        tab.get_url().contains("/doc/")
    });
    wait_until("the upload to be searchable", || {
        env.search(&["marmalade"])
            .as_array()
            .is_some_and(|a| a.len() == 1)
    });
    tab.navigate_to(&format!("{}/search?q=marmalade", web.base))
        .unwrap()
        .wait_until_navigated()
        .unwrap();
    let hit = tab.wait_for_element(".hit h3 a").unwrap();
    assert_eq!(hit.get_inner_text().unwrap(), "quarterly report.pdf");
    screenshot(&tab, "3-upload.png");

    // Retry the failed task from the queue page.
    let failed = env.docs();
    let broken = failed.iter().find(|d| d["name"] == "broken.pdf").unwrap()["id"]
        .as_i64()
        .unwrap();
    let task = env.json(&["show", &broken.to_string()])["tasks"][0]["id"]
        .as_i64()
        .unwrap();
    let claims = |log: &str| log.matches(&format!("task {task} (ocr) claimed")).count();
    assert_eq!(claims(&web.daemon.log_text()), 1);
    tab.navigate_to(&format!("{}/queue", web.base))
        .unwrap()
        .wait_until_navigated()
        .unwrap();
    screenshot(&tab, "4-queue.png");
    tab.wait_for_element(&format!("form[action=\"/queue/{task}/retry\"] button"))
        .unwrap()
        .click()
        .unwrap();
    // The form posts, and the answer sends the browser back to /queue.
    tab.wait_until_navigated().unwrap();
    tab.wait_for_element("h2").unwrap();
    wait_until("the retried task to run again", || {
        claims(&web.daemon.log_text()) == 2
    });
    screenshot(&tab, "5-retried.png");
}
