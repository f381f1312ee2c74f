//! A `sluice` process as the CLI tests start it: real arguments, stderr and stdout lines
//! collected.
#![allow(dead_code)]
use std::io::BufRead;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running `sluice` process whose output lines are collected.
pub struct Sluice {
    pub child: Child,
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Sluice {
    pub fn start(args: &[&str]) -> Sluice {
        let mut args = args.to_vec();
        // Tests run side by side: no fixed admin ports unless a test asks for them.
        if matches!(args.first(), Some(&"run" | &"demo")) {
            for flag in ["--ready-address", "--stats-address", "--admin-address"] {
                if !args.contains(&flag) {
                    args.extend([flag, "off"]);
                }
            }
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(&args)
            .env("RUST_LOG", "info")
            // Nothing from the environment says who or where it is: the arguments do.
            .env_remove("KUBECONFIG")
            .env_remove("POD_NAME")
            .env_remove("POD_NAMESPACE")
            .env_remove("INSTANCE_IP")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sluice");
        let log = Arc::new(Mutex::new(Vec::new()));
        // Logs on stderr, access-log lines on stdout: one list, in arrival order.
        collect(child.stderr.take().unwrap(), log.clone());
        collect(child.stdout.take().unwrap(), log.clone());
        Sluice { child, log }
    }

    /// `sluice run` on `config`, bound to loopback with `port_map` (e.g. `80=0`), plus `extra`.
    pub fn run(config: &Path, port_map: &str, extra: &[&str]) -> Sluice {
        let mut args = vec![
            "run",
            "--config",
            config.to_str().unwrap(),
            "--bind-address",
            "127.0.0.1",
            "--port-map",
            port_map,
        ];
        args.extend_from_slice(extra);
        Sluice::start(&args)
    }

    /// Lines containing `needle` so far.
    pub fn count(&self, needle: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    /// Waits (bounded) until `needle` has been logged `n` times.
    pub fn wait_for(&self, needle: &str, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.count(needle) < n {
            assert!(
                Instant::now() < deadline,
                "waited for {n}× {needle:?}; log:\n{}",
                self.dump()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The address of the first listener, from its log line.
    pub fn listening(&self) -> SocketAddr {
        self.wait_for("listening", 1);
        self.logged_addr("listening").unwrap()
    }

    /// The `addr=` of the first line containing `needle`, once logged.
    pub fn logged_addr(&self, needle: &str) -> Option<SocketAddr> {
        let log = self.log.lock().unwrap();
        let line = log.iter().find(|l| l.contains(needle))?;
        let addr = line.split("addr=").nth(1)?.split_whitespace().next()?;
        addr.parse().ok()
    }

    pub fn dump(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }
}

fn collect(from: impl std::io::Read + Send + 'static, sink: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(from).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
}

impl Drop for Sluice {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
