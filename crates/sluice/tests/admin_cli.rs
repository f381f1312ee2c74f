//! The readiness, metrics and admin ports of a running `sluice run`, over real sockets on
//! loopback (every port `127.0.0.1:0`, read back from the log), and `sluice config-dump` on
//! the examples as golden files.
mod common;
#[path = "common/process.rs"]
mod process;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use process::Sluice;
use sluice_echo::{Echo, Identity};
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples");
const PORTS: [&str; 6] = [
    "--ready-address",
    "127.0.0.1:0",
    "--stats-address",
    "127.0.0.1:0",
    "--admin-address",
    "127.0.0.1:0",
];

struct Answer {
    status: u16,
    content_type: String,
    body: String,
}

async fn fetch(method: &str, addr: SocketAddr, path: &str) -> Answer {
    let client: Client<HttpConnector, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let req = hyper::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .header("host", "shop.example")
        .body(Empty::new())
        .unwrap();
    let resp = client.request(req).await.expect("request failed");
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    Answer {
        status,
        content_type,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

async fn get(addr: SocketAddr, path: &str) -> Answer {
    fetch("GET", addr, path).await
}

/// The `addr` field of the first JSON log line whose message is `message` (bounded wait).
fn json_addr(sluice: &Sluice, message: &str) -> SocketAddr {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = sluice.log.lock().unwrap().iter().find_map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("a JSON log line");
            (v["fields"]["message"] == message).then(|| v["fields"]["addr"].clone())
        });
        if let Some(addr) = found {
            return addr.as_str().unwrap().parse().unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "no {message:?}; log:\n{}",
            sluice.dump()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn has_lines(text: &str, lines: &[&str]) {
    for line in lines {
        assert!(text.lines().any(|l| l == *line), "{line} in\n{text}");
    }
}

/// Polls until `done` (bounded: 15 s, then fails naming `what`).
async fn eventually<F: std::future::Future<Output = bool>>(
    what: &str,
    mut done: impl FnMut() -> F,
) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done().await {
        assert!(Instant::now() < deadline, "waited in vain for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `sluice explain` on the command line, for the same configuration and port map.
fn explain_cli(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "explain",
            "--config",
            &format!("{EXAMPLES}/seed"),
            "--port-map",
            "80=0",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_ports_serve_the_running_configuration() {
    let mut args = vec!["--log-format", "json"];
    args.extend(PORTS);
    let seed = format!("{EXAMPLES}/seed");
    let sluice = Sluice::run(seed.as_ref(), "80=0", &args);
    let ready = json_addr(&sluice, "readiness endpoint listening");
    let stats = json_addr(&sluice, "stats endpoint listening");
    let admin = json_addr(&sluice, "admin endpoint listening");
    let gateway = json_addr(&sluice, "listening");
    assert_ne!(admin, ready);

    assert_eq!(get(ready, "/healthz/ready").await.status, 200);
    assert_eq!(
        get(ready, "/config_dump").await.status,
        404,
        "readiness only"
    );
    let metrics = get(stats, "/stats/prometheus").await;
    assert_eq!(metrics.status, 200);
    assert_eq!(
        metrics.content_type,
        "text/plain; version=0.0.4; charset=utf-8"
    );

    let clusters = [
        "outbound|8000|stable|demo.default.svc.cluster.local",
        "outbound|8000|testversion|demo.default.svc.cluster.local",
        "outbound|8000||demo.default.svc.cluster.local",
    ];
    let dump = get(admin, "/config_dump").await;
    assert_eq!(
        (dump.status, dump.content_type.as_str()),
        (200, "application/json")
    );
    let dump: serde_json::Value = serde_json::from_str(&dump.body).expect("JSON");
    let names: Vec<&str> = dump["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, clusters);
    assert_eq!(dump["listeners"][0]["route_table"], "http.0");

    has_lines(
        &get(admin, "/clusters").await.body,
        &[
            "outbound|8000|testversion|demo.default.svc.cluster.local::127.0.0.1:18003::weight::1",
            "outbound|8000||demo.default.svc.cluster.local::127.0.0.1:18001::priority::0",
            "outbound|8000|stable|demo.default.svc.cluster.local::default_priority::max_requests::4294967295",
        ],
    );
    has_lines(
        &get(admin, "/routes").await.body,
        &[
            "    VirtualService default/demo #0 users-canary",
            "      match {\"uri\":{\"prefix\":\"/users\"}}",
            "      → outbound|8000|testversion|demo.default.svc.cluster.local (10%)",
        ],
    );

    // The same question gets the same answer as on the command line, text and JSON.
    let asked = "/explain?host=shop.example&path=/users/7&method=POST&header=x-user:%20ann";
    let cli = [
        "--host",
        "shop.example",
        "--path",
        "/users/7",
        "--method",
        "POST",
        "-H",
        "x-user: ann",
    ];
    let text = get(admin, asked).await;
    assert_eq!(text.status, 200);
    assert!(text.body.contains("users-canary"), "{}", text.body);
    assert_eq!(text.body, explain_cli(&cli));
    let json = get(admin, &format!("{asked}&format=json")).await.body;
    let cli_json = explain_cli(&[&cli[..], &["-o", "json"]].concat());
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&json).unwrap(),
        serde_json::from_str::<serde_json::Value>(&cli_json).unwrap()
    );
    assert_eq!(get(admin, "/explain?protocol=udp").await.status, 400);

    // Debug lines appear once the level is raised, not before.
    assert_eq!(get(admin, "/logging").await.body, "level: info\n");
    assert_eq!(get(gateway, "/nowhere").await.status, 404);
    let bad = get(admin, "/logging?level=sluice=loud").await;
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert_eq!(get(admin, "/logging").await.body, "level: info\n");
    let changed = fetch("POST", admin, "/logging?level=sluice_proxy%3Ddebug%2Cinfo").await;
    assert_eq!(changed.body, "level: sluice_proxy=debug,info\n");
    assert_eq!(sluice.count("local reply"), 0, "{}", sluice.dump());
    assert_eq!(get(gateway, "/nowhere").await.status, 404);
    sluice.wait_for("local reply", 1);
    assert_eq!(
        get(admin, "/logging?level=debug").await.body,
        "level: debug\n"
    );
    assert_eq!(get(admin, "/logging").await.body, "level: debug\n");

    // The two requests above in Istio's metrics, scraped over HTTP; the seed's pods are not
    // running here, so a routed request fails to connect (503 UF) and is counted on its cluster.
    assert_eq!(get(gateway, "/tasks").await.status, 503);
    let metrics = get(stats, "/stats/prometheus").await.body;
    let line = |needles: &[&str]| -> String {
        metrics
            .lines()
            .find(|l| needles.iter().all(|n| l.contains(n)))
            .unwrap_or_else(|| panic!("{needles:?} in\n{metrics}"))
            .to_string()
    };
    let nr = line(&["istio_requests_total{", "response_code=\"404\""]);
    assert!(
        nr.contains("response_flags=\"NR\"") && nr.ends_with("} 2"),
        "{nr}"
    );
    let uf = line(&["istio_requests_total{", "response_code=\"503\""]);
    assert!(
        uf.contains("response_flags=\"UF\"")
            && uf.contains("destination_service=\"demo.default.svc.cluster.local\"")
            && uf.ends_with("} 1"),
        "{uf}"
    );
    assert!(
        metrics.contains("\nsluice_config_reloads_total{result=\"ok\"} 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("\nsluice_config_generation 1\n"),
        "{metrics}"
    );

    let ui = get(admin, "/ui").await;
    assert_eq!(
        (ui.status, ui.content_type.as_str()),
        (200, "text/html; charset=utf-8")
    );
    for c in clusters {
        assert!(ui.body.contains(&format!("data-cluster=\"{c}\"")), "{c}");
    }
    assert!(ui.body.contains("<svg"), "{}", ui.body);
    assert!(ui.body.contains("default/demo"), "{}", ui.body);
    assert!(ui.body.contains(">90%</text>"), "{}", ui.body);

    let index = get(admin, "/").await.body;
    assert!(index.contains("href=\"/config_dump\""), "{index}");
    assert_eq!(get(admin, "/no/such/page").await.status, 404);
    assert_eq!(fetch("DELETE", admin, "/ui").await.status, 405);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_is_503_from_sigterm_while_requests_drain() {
    let pod = Echo::start(
        "127.0.0.1:0".parse().unwrap(),
        Identity::new("demo", "v1", "pod-a"),
    )
    .await
    .unwrap();
    // The seed with every endpoint on this test's pod.
    let dir = std::env::temp_dir().join(format!("sluice-admin-drain-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(format!("{EXAMPLES}/seed")).unwrap() {
        let path = entry.unwrap().path();
        let mut text = std::fs::read_to_string(&path).unwrap();
        for port in ["18001", "18002", "18003"] {
            text = text.replace(port, &pod.addr.port().to_string());
        }
        std::fs::write(dir.join(path.file_name().unwrap()), text).unwrap();
    }
    let mut args = vec!["--drain-timeout", "10s"];
    args.extend(&PORTS[..2]);
    let mut sluice = Sluice::run(&dir, "80=0", &args);
    let gateway = sluice.listening();
    let ready = sluice.logged_addr("readiness endpoint listening").unwrap();
    assert_eq!(get(ready, "/healthz/ready").await.status, 200);

    let slow = tokio::spawn(async move { get(gateway, "/tasks?sleep_ms=3000").await.status });
    eventually("the slow request to arrive", || async { pod.hits() > 0 }).await;
    sluice.signal("-TERM");
    eventually("readiness 503", || async {
        get(ready, "/healthz/ready").await.status == 503
    })
    .await;
    assert!(
        !slow.is_finished(),
        "503 while the request is still in flight"
    );
    assert_eq!(slow.await.unwrap(), 200);
    let child = &mut sluice.child;
    eventually("sluice to exit after the drain", || {
        let exited = child.try_wait().unwrap().is_some();
        async move { exited }
    })
    .await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A port that cannot be bound stops the gateway with the flag's name.
#[test]
fn a_busy_admin_port_is_an_error_naming_the_flag() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "run",
            "--config",
            &format!("{EXAMPLES}/seed"),
            "--bind-address",
            "127.0.0.1",
        ])
        .args(["--port-map", "80=0", "--admin-address", &addr])
        .args(["--ready-address", "off", "--stats-address", "off"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {addr} (--admin-address)")),
        "{stderr}"
    );
}

/// The compiled examples as JSON: a change of routing shows in review as a diff.
#[test]
fn config_dump_of_the_examples_is_unchanged() {
    for example in ["seed", "gateway-api", "ingress"] {
        let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["config-dump", "-c", &format!("{EXAMPLES}/{example}")])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
        common::golden(
            &format!("config-dump-{example}.json"),
            &String::from_utf8_lossy(&out.stdout),
        );
    }
    // A configuration the gateway would refuse has nothing to dump.
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["config-dump", "-c", &format!("{EXAMPLES}/bad")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
}
