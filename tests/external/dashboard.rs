//! The dashboard in a real headless Chromium, driven over WebDriver (chromedriver): the page
//! loads from the admin port, refreshes itself, and shows an ES2+ call made after it loaded.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them; `$CHROMIUM` and
//! `$CHROMEDRIVER` name others). Without them the test is reported ignored (`[needs chromium]`),
//! unless `SMDPP_REQUIRE_BROWSER=1` (set by `.ci/run`) makes that a failure.

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use crate::Needed;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use libtest_mimic::Trial;
use serde_json::{json, Value};
use smdpp_mock::es2::Function;
use tokio::net::TcpStream;

fn find(env: &str, default: &str) -> Result<PathBuf, String> {
    let path = std::env::var_os(env).map_or_else(|| PathBuf::from(default), PathBuf::from);
    if path.exists() {
        Ok(path)
    } else {
        Err(format!(
            "{} is missing (${env} names another), so the dashboard was NOT checked in a \
             browser. Debian/Ubuntu: apt-get install chromium chromium-driver",
            path.display()
        ))
    }
}

/// The browser test, ignored without chromium and chromedriver.
pub(crate) fn tests() -> (Needed, Vec<Trial>) {
    let found = find("CHROMEDRIVER", "/usr/bin/chromedriver")
        .and_then(|driver| find("CHROMIUM", "/usr/bin/chromium").map(|_| driver));
    let needed = Needed::new("needs chromium", found, "SMDPP_REQUIRE_BROWSER");
    let trials = vec![needed.trial(
        "dashboard::the_dashboard_shows_a_call_made_after_it_loaded",
        the_dashboard_shows_a_call_made_after_it_loaded,
    )];
    (needed, trials)
}

/// chromedriver on a free port, in a process group of its own with the Chromium it starts:
/// dropping it kills the whole group, so a failing test leaves no browser behind.
struct Driver {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

impl Driver {
    async fn start(binary: &PathBuf) -> Driver {
        // chromedriver cannot be given port 0; a port found free can be taken again before it
        // binds, so try a few.
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut driver = Driver {
                child: Command::new(binary)
                    .arg(format!("--port={port}"))
                    .process_group(0)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display())),
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
            };
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline && driver.child.try_wait().unwrap().is_none() {
                if let Ok(status) = driver.try_send(Method::GET, "/status", None).await {
                    if status["value"]["ready"] == true {
                        return driver;
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        panic!("chromedriver never became ready");
    }

    async fn try_send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let tcp = TcpStream::connect(self.addr)
            .await
            .map_err(|e| e.to_string())?;
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr.to_string())
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(
                body.map(|b| b.to_string()).unwrap_or_default(),
            )))
            .unwrap();
        let response = send
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let raw = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        serde_json::from_slice(&raw).map_err(|e| format!("{e}: {}", String::from_utf8_lossy(&raw)))
    }

    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let answer = self.try_send(method, path, body).await.unwrap();
        assert!(
            answer["value"].get("error").is_none(),
            "WebDriver error: {answer}"
        );
        answer
    }
}

/// A browser session on one page.
struct Session<'a> {
    driver: &'a Driver,
    id: String,
}

impl Session<'_> {
    async fn eval(&self, script: &str) -> Value {
        self.driver
            .send(
                Method::POST,
                &format!("/session/{}/execute/sync", self.id),
                Some(json!({ "script": script, "args": [] })),
            )
            .await["value"]
            .clone()
    }

    /// Evaluates `script` until `done` holds of its value (up to 20 s); returns the value.
    async fn wait_for(&self, script: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let v = self.eval(script).await;
            if done(&v) {
                return v;
            }
            assert!(Instant::now() < deadline, "never true: {script} (last {v})");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

const JOURNAL_ROWS: &str = r#"return [...document.querySelectorAll('#journal tbody tr[data-seq]')].map(r => ({
    seq: r.dataset.seq,
    function: r.querySelector('.function').textContent,
    iccid: r.querySelector('.iccid').textContent,
    status: r.querySelector('.status').textContent,
}));"#;

const ALLOCATED_STANDARD: &str = r#"const c = document.querySelector(
    '#profiles tr[data-operator="test-mno"][data-profile-type="STANDARD"] td[data-state="Allocated"]');
return c ? c.textContent : null;"#;

async fn the_dashboard_shows_a_call_made_after_it_loaded(chromedriver: PathBuf) {
    let chromium = find("CHROMIUM", "/usr/bin/chromium").unwrap();
    let t = TestServer::start().await;
    let profile_dir = TempDir::new("chromium");
    let driver = Driver::start(&chromedriver).await;
    // The flags Chromium needs on a machine without a network or a display.
    let created = driver
        .send(
            Method::POST,
            "/session",
            Some(json!({ "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": chromium,
                    "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                             "--no-first-run", "--disable-background-networking",
                             "--disable-component-update", "--disable-sync",
                             "--disable-dev-shm-usage", "--window-size=1280,1000",
                             format!("--user-data-dir={}", profile_dir.path().display())],
                },
            } } })),
        )
        .await;
    let session = Session {
        driver: &driver,
        id: created["value"]["sessionId"].as_str().unwrap().to_owned(),
    };

    let url = format!("http://{}/admin/dashboard", t.admin_addr());
    driver
        .send(
            Method::POST,
            &format!("/session/{}/url", session.id),
            Some(json!({ "url": url })),
        )
        .await;
    let title = session.eval("return document.title").await;
    assert!(title.as_str().unwrap().contains("smdpp-mock"), "{title}");
    // The first refresh happened: live, the inventory shown, the journal empty.
    session
        .wait_for("return Number(document.body.dataset.refreshes || 0)", |v| {
            v.as_u64() >= Some(1)
        })
        .await;
    assert_eq!(
        session
            .eval("return document.getElementById('status').textContent")
            .await,
        "live"
    );
    assert_eq!(session.eval(ALLOCATED_STANDARD).await, "0");
    assert_eq!(session.eval(JOURNAL_ROWS).await, json!([]));

    // One ES2+ call over mutual TLS; the page picks it up on its own.
    let iccid = download_by_type(&t.client("test-mno"), "STANDARD", None).await;
    let rows = session
        .wait_for(JOURNAL_ROWS, |v| {
            v.as_array().is_some_and(|a| !a.is_empty())
        })
        .await;
    assert_eq!(
        rows,
        json!([{ "seq": "1", "function": "DownloadOrder", "iccid": iccid, "status": "Executed-Success" }])
    );
    session.wait_for(ALLOCATED_STANDARD, |v| v == "1").await;

    // A refused call shows with its status code.
    t.client("test-mno")
        .call(
            Function::ConfirmOrder,
            json!({ "iccid": "8944500100000009998", "releaseFlag": true }),
        )
        .await
        .assert_failed("8.2.1", "3.9");
    let rows = session
        .wait_for(JOURNAL_ROWS, |v| v.as_array().is_some_and(|a| a.len() == 2))
        .await;
    assert_eq!(rows[0]["function"], "ConfirmOrder", "newest first: {rows}");
    assert_eq!(rows[0]["status"], "Failed 8.2.1/3.9");

    driver
        .send(Method::DELETE, &format!("/session/{}", session.id), None)
        .await;
}
