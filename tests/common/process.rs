//! The built binary as a separate process, started with JSON logs on system-chosen ports: its
//! stderr is collected on a thread, and its addresses are read from the "listening" lines.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A running `smdpp-mock`; killed (SIGKILL) and reaped on drop.
pub struct Process {
    pub child: Child,
    pub log: Arc<Mutex<Vec<String>>>,
    /// The ES2+ listener as bound (may be 0.0.0.0).
    pub es2: SocketAddr,
    /// The admin listener as bound.
    pub admin: SocketAddr,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `serve` on loopback port 0 with JSON logs and `args` (scenario, certificates, …).
pub fn serve(args: &[&std::ffi::OsStr]) -> Process {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_smdpp-mock"));
    cmd.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
        "--es9-listen",
        "127.0.0.1:0",
        "--smds-listen",
        "127.0.0.1:0",
    ])
    .args(["--log-format", "json"])
    .args(args);
    start(cmd)
}

/// Starts `cmd` (which must log JSON) and waits until both listeners are up.
pub fn start(mut cmd: Command) -> Process {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let log = Arc::new(Mutex::new(Vec::new()));
    let lines = log.clone();
    // Read to the end, so the child never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            lines.lock().unwrap().push(line);
        }
    });
    // Owned by the guard from here on, so a failed start still kills and reaps it.
    let unknown = SocketAddr::from(([0, 0, 0, 0], 0));
    let mut process = Process {
        child,
        log,
        es2: unknown,
        admin: unknown,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let (Some(es2), Some(admin)) = (
            process.listening("ES2+ listening", "es2_addr"),
            process.listening("admin API listening", "admin_addr"),
        ) {
            process.es2 = es2;
            process.admin = admin;
            return process;
        }
        if let Some(status) = process.child.try_wait().unwrap() {
            std::thread::sleep(Duration::from_millis(100));
            panic!(
                "the server exited ({status}): {:?}",
                process.log.lock().unwrap()
            );
        }
        assert!(
            Instant::now() < deadline,
            "never listening: {:?}",
            process.log.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Process {
    /// The address field `name` of the first log line whose message starts with `message`.
    fn listening(&self, message: &str, name: &str) -> Option<SocketAddr> {
        self.log.lock().unwrap().iter().find_map(|line| {
            let v: Value = serde_json::from_str(line).ok()?;
            v["fields"]["message"]
                .as_str()?
                .starts_with(message)
                .then(|| v["fields"][name].as_str()?.parse().ok())?
        })
    }

    /// The ES2+ address to connect to (loopback when bound to every interface).
    pub fn es2_loopback(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.es2.port()))
    }

    /// The admin address to connect to.
    pub fn admin_loopback(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.admin.port()))
    }

    /// Sends SIGTERM and waits (up to 20 s) for the exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        self.sigterm();
        self.wait_exit()
    }

    /// Sends SIGTERM, as `docker stop` does.
    pub fn sigterm(&self) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
    }

    /// Waits (up to 20 s, blocking the thread) for the process to end.
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Let the reader thread take the last lines.
                std::thread::sleep(Duration::from_millis(100));
                return status;
            }
            assert!(Instant::now() < deadline, "no exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The log so far.
    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}
