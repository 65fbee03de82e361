//! The Dockerfile and the docker-compose example, without a Docker engine: the image's exact
//! entrypoint, command, environment and health check run against the locally built binary,
//! and the compose file is checked for agreement (service names, ports, paths, SANs) and then
//! rehearsed on this host: the mock with the compose environment, `receiver.py` and `client.sh`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::Value;

const BINARY: &str = env!("CARGO_BIN_EXE_smdpp-mock");

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// One instruction of a Dockerfile: keyword (upper case) and its arguments, continuations joined.
#[derive(Debug)]
struct Instruction {
    keyword: String,
    args: String,
}

fn parse_dockerfile(text: &str) -> Vec<Vec<Instruction>> {
    let mut stages: Vec<Vec<Instruction>> = Vec::new();
    let mut logical = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && logical.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(head) => {
                logical.push_str(head);
                logical.push(' ');
            }
            None => {
                logical.push_str(trimmed);
                let text = std::mem::take(&mut logical);
                let (keyword, args) = text.split_once(char::is_whitespace).unwrap_or((&text, ""));
                let instruction = Instruction {
                    keyword: keyword.to_ascii_uppercase(),
                    args: args.trim().to_owned(),
                };
                if instruction.keyword == "FROM" {
                    stages.push(Vec::new());
                }
                stages
                    .last_mut()
                    .expect("the Dockerfile starts with FROM")
                    .push(instruction);
            }
        }
    }
    stages
}

/// The final stage, as the container runs it.
struct Image {
    env: BTreeMap<String, String>,
    entrypoint: Vec<String>,
    cmd: Vec<String>,
    healthcheck: Vec<String>,
    exposed: Vec<u16>,
    volumes: Vec<String>,
    user: String,
}

fn exec_form(args: &str) -> Vec<String> {
    serde_json::from_str(args).unwrap_or_else(|e| panic!("{args:?} is not the JSON exec form: {e}"))
}

fn image() -> (Image, Vec<Vec<Instruction>>) {
    let stages = parse_dockerfile(&std::fs::read_to_string(repo("Dockerfile")).unwrap());
    let last = stages.last().unwrap();
    let one = |keyword: &str| -> &str {
        let found: Vec<_> = last.iter().filter(|i| i.keyword == keyword).collect();
        assert_eq!(found.len(), 1, "one {keyword} in the final stage");
        &found[0].args
    };
    let mut env = BTreeMap::new();
    for i in last.iter().filter(|i| i.keyword == "ENV") {
        for pair in i.args.split_whitespace() {
            let (k, v) = pair
                .split_once('=')
                .unwrap_or_else(|| panic!("ENV {pair}: use KEY=VALUE"));
            env.insert(k.to_owned(), v.to_owned());
        }
    }
    let healthcheck = one("HEALTHCHECK");
    let (_, cmd) = healthcheck
        .split_once("CMD ")
        .expect("HEALTHCHECK ... CMD [...]");
    let image = Image {
        env,
        entrypoint: exec_form(one("ENTRYPOINT")),
        cmd: exec_form(one("CMD")),
        healthcheck: exec_form(cmd.trim()),
        exposed: one("EXPOSE")
            .split_whitespace()
            .map(|p| p.parse().unwrap())
            .collect(),
        volumes: exec_form(one("VOLUME")),
        user: one("USER").to_owned(),
    };
    (image, stages)
}

fn port_of(addr: &str) -> u16 {
    addr.parse::<SocketAddr>().unwrap().port()
}

/// The image's environment on this host: container paths under `root`, ports free ones.
fn host_env(image: &Image, root: &Path, ports: &BTreeMap<u16, u16>) -> BTreeMap<String, String> {
    image
        .env
        .iter()
        .map(|(k, v)| {
            let v = match v.parse::<SocketAddr>() {
                Ok(addr) => SocketAddr::new(addr.ip(), ports[&addr.port()]).to_string(),
                Err(_) if v.starts_with('/') => root.join(&v[1..]).display().to_string(),
                Err(_) => v.clone(),
            };
            (k.clone(), v)
        })
        .collect()
}

/// `argv` as the image would run it, with the binary path mapped to the local build.
fn command(image: &Image, argv: &[String], env: &BTreeMap<String, String>) -> Command {
    assert_eq!(
        argv[0], image.entrypoint[0],
        "the image runs one binary: {argv:?}"
    );
    let mut cmd = Command::new(BINARY);
    cmd.args(&argv[1..])
        .env_clear()
        .envs(env)
        .stdin(Stdio::null());
    cmd
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn health(image: &Image, env: &BTreeMap<String, String>) -> Output {
    command(image, &image.healthcheck, env).output().unwrap()
}

/// The mock started as the image starts it, on ports the system picks (so parallel tests never
/// collide), with the environment the health check then needs.
struct Server {
    process: crate::common::process::Process,
    /// The environment with the real ports, for the health check.
    env: BTreeMap<String, String>,
    /// Where to connect for ES2+.
    es2: SocketAddr,
}

fn start_server(image: &Image, env: &BTreeMap<String, String>) -> Server {
    let argv: Vec<String> = image.entrypoint.iter().chain(&image.cmd).cloned().collect();
    let process = crate::common::process::start(command(image, &argv, env));
    let mut env = env.clone();
    env.insert("SMDPP_LISTEN".into(), process.es2.to_string());
    env.insert("SMDPP_ADMIN_LISTEN".into(), process.admin.to_string());
    Server {
        es2: process.es2_loopback(),
        process,
        env,
    }
}

#[test]
fn the_dockerfile_is_what_the_issue_asks_for() {
    let (image, stages) = image();
    assert!(stages.len() >= 2, "multi-stage");
    let build = &stages[0];
    assert!(
        build
            .iter()
            .any(|i| i.keyword == "RUN" && i.args.contains("cargo build --release --locked")),
        "the builder runs cargo build --release --locked"
    );
    assert!(
        !["root", "0", "0:0"].contains(&image.user.as_str()),
        "runs as a non-root user, not {}",
        image.user
    );
    assert_eq!(image.exposed, [6443, 6444, 6445, 8080]);
    assert_eq!(image.volumes, ["/certs", "/scenarios"]);
    assert_eq!(image.entrypoint, ["/usr/local/bin/smdpp-mock"]);
    // Binds every interface inside the container, on the exposed ports.
    for key in [
        "SMDPP_LISTEN",
        "SMDPP_ES9_LISTEN",
        "SMDPP_SMDS_LISTEN",
        "SMDPP_ADMIN_LISTEN",
    ] {
        let addr: SocketAddr = image.env[key].parse().unwrap();
        assert!(addr.ip().is_unspecified(), "{key}={addr}");
        assert!(image.exposed.contains(&addr.port()), "{key}={addr}");
    }
    assert_eq!(image.env["SMDPP_CERTS_DIR"], "/certs");
    // Every variable the image sets is one the binary reads.
    // The flags are declared across the CLI's files, one per subcommand.
    let help: String = std::fs::read_dir(repo("src/bin/smdpp-mock/cli"))
        .unwrap()
        .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap())
        .collect();
    for key in image.env.keys() {
        assert!(
            help.contains(&format!("env = \"{key}\"")),
            "{key} is read by no flag"
        );
    }
}

#[test]
fn the_image_command_line_serves_and_its_health_check_reports() {
    let (image, _) = image();
    let root = TempDir::new("container");
    let ports: BTreeMap<u16, u16> = image.exposed.iter().map(|&p| (p, 0)).collect();
    let env = host_env(&image, root.path(), &ports);
    std::fs::create_dir_all(&env["SMDPP_CERTS_DIR"]).unwrap();

    // Nothing listens yet: unhealthy, saying why.
    let down = health(&image, &env);
    assert_eq!(down.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&down.stderr).contains("127.0.0.1"),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );

    let mut server = start_server(&image, &env);
    assert!(server.es2.port() != 0);
    let ok = health(&image, &server.env);
    assert!(
        ok.status.success() && String::from_utf8_lossy(&ok.stdout).starts_with("ok: 127.0.0.1:"),
        "{ok:?}"
    );
    // Both listeners are on every interface, as the image asks.
    for key in ["SMDPP_LISTEN", "SMDPP_ADMIN_LISTEN"] {
        let addr: SocketAddr = server.env[key].parse().unwrap();
        assert!(addr.ip().is_unspecified(), "{key} {addr}");
    }

    // The PKI went to the certificate volume, and an operator gets a working mTLS call.
    let certs = PathBuf::from(&env["SMDPP_CERTS_DIR"]);
    let client = Es2Client::from_dir(server.es2, &certs, "test-mno");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let iccid = rt.block_on(download_by_type(&client, "STANDARD", None));
    assert_eq!(iccid, "8944500100000000004");

    // SIGTERM, as `docker stop` sends: a clean exit.
    let status = server.process.terminate();
    assert!(status.success(), "{status}");
    // SMDPP_LOG_FORMAT=json: every log line is a JSON object.
    let log = server.process.log_lines();
    assert!(log.len() >= 2);
    for line in &log {
        assert!(
            serde_json::from_str::<Value>(line).is_ok_and(|v| v.is_object()),
            "not JSON: {line}"
        );
    }
}

// ---- docker-compose ---------------------------------------------------------------------------

const COMPOSE_DIR: &str = "examples/compose";

fn compose() -> Value {
    let text = std::fs::read_to_string(repo(&format!("{COMPOSE_DIR}/docker-compose.yml"))).unwrap();
    serde_saphyr::from_str(&text).unwrap()
}

fn service<'a>(compose: &'a Value, name: &str) -> &'a Value {
    compose["services"]
        .get(name)
        .unwrap_or_else(|| panic!("no service {name}"))
}

fn env_of(service: &Value) -> BTreeMap<String, String> {
    service["environment"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), interpolate(v.as_str().unwrap_or_default())))
                .collect()
        })
        .unwrap_or_default()
}

/// A compose value with `${NAME:-default}` as compose expands it when NAME is not set in the
/// shell (these tests assume it is not); any other `$` is refused, so a new form is noticed.
fn interpolate(value: &str) -> String {
    match value
        .strip_prefix("${")
        .and_then(|v| v.strip_suffix('}'))
        .and_then(|v| v.split_once(":-"))
    {
        Some((_, default)) => default.to_owned(),
        None => {
            assert!(
                !value.contains('$'),
                "compose interpolation {value:?} is not understood here"
            );
            value.to_owned()
        }
    }
}

/// A YAML list of strings.
fn strings(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect()
}

/// `(source, target)` of each volume entry of `service`.
fn mounts(service: &Value) -> Vec<(String, String)> {
    service["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| {
            let mut parts = v.as_str().unwrap().split(':');
            (
                parts.next().unwrap().to_owned(),
                parts.next().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The host file behind `container_path` in `service`, for bind mounts.
fn host_path(service: &Value, container_path: &str) -> Option<PathBuf> {
    mounts(service).into_iter().find_map(|(source, target)| {
        let rest = container_path.strip_prefix(&target)?;
        source.starts_with("./").then(|| {
            repo(COMPOSE_DIR)
                .join(&source[2..])
                .join(rest.trim_start_matches('/'))
        })
    })
}

/// The named volume mounted at `target` in `service`.
fn volume_at(service: &Value, target: &str) -> Option<String> {
    mounts(service)
        .into_iter()
        .find(|(source, t)| t == target && !source.starts_with('.') && !source.starts_with('/'))
        .map(|(source, _)| source)
}

struct Agreement {
    es2_url: String,
    operator: String,
    scenario: PathBuf,
    receiver_port: u16,
}

/// Checks that the three services agree with each other and with the image; returns what the
/// rehearsal needs.
fn check_agreement() -> Agreement {
    let (image, _) = image();
    let c = compose();
    let (smdpp, receiver, client) = (
        service(&c, "smdpp"),
        service(&c, "receiver"),
        service(&c, "client"),
    );
    let context = repo(COMPOSE_DIR).join(smdpp["build"]["context"].as_str().unwrap());
    let dockerfile = smdpp["build"]["dockerfile"]
        .as_str()
        .unwrap_or("Dockerfile");
    assert!(
        context.join(dockerfile).exists(),
        "build context holds {dockerfile}"
    );

    let mock_env = env_of(smdpp);
    let client_env = env_of(client);
    // The client's URL names the mock's service, a SAN of its certificate, and its ES2+ port.
    let url = &client_env["SMDPP_URL"];
    let authority = url
        .strip_prefix("https://")
        .expect("https URL")
        .trim_end_matches('/');
    let (host, port) = authority.split_once(':').unwrap();
    assert_eq!(host, "smdpp", "the client calls the service by name");
    assert!(
        mock_env["SMDPP_SAN"].split(',').any(|s| s == host),
        "SMDPP_SAN names {host}"
    );
    let es2_port = port_of(&image.env["SMDPP_LISTEN"]);
    assert_eq!(port.parse::<u16>().unwrap(), es2_port);
    let admin_port = port_of(&image.env["SMDPP_ADMIN_LISTEN"]);
    let published: Vec<String> = smdpp["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_owned())
        .collect();
    assert!(
        published
            .iter()
            .any(|p| p.ends_with(&format!(":{es2_port}"))),
        "{published:?}"
    );
    assert!(
        published.contains(&format!("127.0.0.1:{admin_port}:{admin_port}")),
        "the admin port is published on loopback only: {published:?}"
    );

    // Certificates: the mock writes them into a named volume the client reads.
    let certs_dir = mock_env
        .get("SMDPP_CERTS_DIR")
        .unwrap_or(&image.env["SMDPP_CERTS_DIR"]);
    let volume = volume_at(smdpp, certs_dir).expect("a named volume at the certificate directory");
    assert!(
        c["volumes"].get(&volume).is_some(),
        "volume {volume} declared"
    );
    let client_script = std::fs::read_to_string(repo(&format!("{COMPOSE_DIR}/client.sh"))).unwrap();
    assert!(client_script.contains(&format!("CERTS_DIR=${{CERTS_DIR:-{certs_dir}}}")));
    assert_eq!(
        volume_at(client, certs_dir).as_deref(),
        Some(volume.as_str())
    );
    assert_eq!(
        client["user"].as_str(),
        Some(image.user.as_str()),
        "reads the 0600 keys"
    );
    assert_eq!(
        client["depends_on"]["smdpp"]["condition"].as_str(),
        Some("service_healthy")
    );
    let entry = strings(&client["entrypoint"]);
    assert_eq!(
        host_path(client, entry[1]),
        Some(repo(&format!("{COMPOSE_DIR}/client.sh")))
    );

    // The scenario is mounted, loads, and sends the client's operator's notifications to the
    // receiver service on the port it listens on.
    let scenario = host_path(smdpp, &mock_env["SMDPP_SCENARIO"]).expect("the scenario is mounted");
    let loaded = smdpp_mock::Scenario::load(&scenario).unwrap_or_else(|e| panic!("{e}"));
    let operator = client_env["OPERATOR"].clone();
    let callback = loaded
        .operators()
        .iter()
        .find(|o| *o.id == *operator)
        .unwrap_or_else(|| panic!("the scenario has operator {operator}"))
        .callback
        .clone()
        .expect("with a callback");
    let receiver_port: u16 = receiver["expose"][0].as_str().unwrap().parse().unwrap();
    assert!(
        callback
            .url
            .starts_with(&format!("http://receiver:{receiver_port}/")),
        "{}",
        callback.url
    );
    let command = strings(&receiver["command"]);
    assert_eq!(
        host_path(receiver, command[1]),
        Some(repo(&format!("{COMPOSE_DIR}/receiver.py")))
    );
    Agreement {
        es2_url: url.clone(),
        operator,
        scenario,
        receiver_port,
    }
}

#[test]
fn the_compose_services_agree() {
    check_agreement();
}

/// The compose example on this host: the mock with the compose environment and scenario, the
/// receiver script, and the client script, with only host names and ports mapped.
#[test]
fn the_compose_example_runs_on_this_host() {
    let agreement = check_agreement();
    for tool in ["sh", "curl", "python3"] {
        if Command::new(tool).arg("--version").output().is_err() && tool != "sh" {
            panic!("{tool} is needed for this test");
        }
    }
    let (image, _) = image();
    let c = compose();
    let root = TempDir::new("compose");

    // The receiver, on a port the system picks (in compose: receiver:9000).
    let mut receiver = Running(
        Command::new("python3")
            .arg(repo(&format!("{COMPOSE_DIR}/receiver.py")))
            .env("RECEIVER_HOST", "127.0.0.1")
            .env("RECEIVER_PORT", "0")
            .env("PYTHONUNBUFFERED", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let receiver_log = Arc::new(Mutex::new(Vec::<String>::new()));
    let stdout = BufReader::new(receiver.0.stdout.take().unwrap());
    let lines = receiver_log.clone();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            lines.lock().unwrap().push(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let receiver_addr = loop {
        let found = receiver_log.lock().unwrap().iter().find_map(|l| {
            let rest = l.split("listening on http://").nth(1)?;
            rest.split_whitespace().next().map(str::to_owned)
        });
        if let Some(addr) = found {
            break addr;
        }
        assert!(Instant::now() < deadline, "the receiver never listened");
        std::thread::sleep(Duration::from_millis(20));
    };

    // The compose scenario with only the callback's host and port changed to the receiver's.
    let scenario = root.path().join("compose.yaml");
    let text = std::fs::read_to_string(&agreement.scenario).unwrap();
    let compose_host = format!("receiver:{}", agreement.receiver_port);
    assert!(text.contains(&compose_host));
    std::fs::write(&scenario, text.replace(&compose_host, &receiver_addr)).unwrap();

    let ports: BTreeMap<u16, u16> = image.exposed.iter().map(|&p| (p, 0)).collect();
    let mut env = host_env(&image, root.path(), &ports);
    for (k, v) in env_of(service(&c, "smdpp")) {
        env.insert(k, v);
    }
    env.insert("SMDPP_SCENARIO".into(), scenario.display().to_string());
    let certs = PathBuf::from(&env["SMDPP_CERTS_DIR"]);
    std::fs::create_dir_all(&certs).unwrap();
    let server = start_server(&image, &env);
    assert!(health(&image, &server.env).status.success());

    // The server certificate names the compose service.
    let pem = std::fs::read(certs.join("server.pem")).unwrap();
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
    let cert = pem.parse_x509().unwrap();
    let sans: Vec<String> = cert
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert!(sans.contains(&"DNSName(smdpp)".to_owned()), "{sans:?}");
    let admin = SocketAddr::from(([127, 0, 0, 1], port_of(&server.env["SMDPP_ADMIN_LISTEN"])));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // The admin API listens on every interface: it needs the token the mock made and kept in
    // the certificate volume (as the compose README reads it), and answers the service name.
    let token = std::fs::read_to_string(certs.join("admin-token")).unwrap();
    let bearer = format!("Bearer {}", token.trim());
    let admin_get = |path: &str, host: &str| {
        rt.block_on(AdminClient::at(admin).send_with(
            hyper::Method::GET,
            path,
            None,
            &[("authorization", &bearer), ("host", host)],
        ))
    };
    assert_eq!(
        rt.block_on(AdminClient::at(admin).get("/admin/journal"))
            .status,
        401
    );
    assert_eq!(admin_get("/admin/journal", "smdpp:8080").status, 200);
    assert_eq!(admin_get("/admin/journal", "evil.example:8080").status, 403);

    // The client script, as the client container runs it.
    let es2_port = server.es2.port();
    let url = agreement.es2_url.replace("smdpp:", "localhost:").replace(
        &format!(":{}", port_of(&image.env["SMDPP_LISTEN"])),
        &format!(":{es2_port}"),
    );
    let out = Command::new("sh")
        .arg(repo(&format!("{COMPOSE_DIR}/client.sh")))
        .env("SMDPP_URL", &url)
        .env("OPERATOR", &agreement.operator)
        .env("CERTS_DIR", &certs)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "client.sh failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The Activation Code names where LPAs reach ES9+: the service name and the ES9+ port
    // (6444 in the container; here the port the system picked).
    assert!(stdout.contains("Activation Code: 1$smdpp:"), "{stdout}");

    // The device timeline runs over ES9+; the receiver gets points 3, 4 and 100, each answered 204.
    let deadline = Instant::now() + Duration::from_secs(30);
    let delivered = loop {
        let n = admin_get("/admin/notifications?state=delivered", "localhost").body
            ["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["notificationPointId"].as_u64().unwrap())
            .collect::<Vec<_>>();
        if n.len() >= 3 || Instant::now() > deadline {
            break n;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(delivered, [3, 4, 100]);
    // The device played its timeline over the real ES9+ listener (`protocol: es9`).
    let journal = admin_get("/admin/journal?limit=100", "localhost").body;
    let functions: Vec<&str> = journal["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["function"].as_str())
        .collect();
    for f in [
        "InitiateAuthentication",
        "AuthenticateClient",
        "GetBoundProfilePackage",
        "HandleNotification",
    ] {
        assert!(functions.contains(&f), "{f} in {functions:?}");
    }
    // The receiver logged each one (its output arrives through a pipe: give it a moment).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = receiver_log.lock().unwrap().join("\n");
        let missing: Vec<_> = ["point=3 ", "point=4 ", "point=100 "]
            .into_iter()
            .filter(|p| !log.contains(p))
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "receiver log lacks {missing:?}: {log}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(server);
    drop(receiver);
}
