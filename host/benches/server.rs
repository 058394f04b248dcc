//! AgentCore front-door benchmarks (a bench binary): `cargo bench --bench server`.
//!
//! - start to the first `200` on `/ping` of an `agent-host serve` process whose plugins
//!   load from a warm precompiled cache (median of 10 starts), and its idle RSS;
//! - `/ping` latency while 10 tasks are busy: sequential keep-alive pings (p50/p99) and,
//!   when `wrk` is installed, `wrk -t2 -c16 -d5s --latency` against the same server.

mod common;

use common::{ms, percentile, us};
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_host::agent::{Answer, Job, JobRunner};
use agent_host::server::{AppState, ServerSettings};
use agent_host::session::Users;
use futures_util::future::BoxFuture;

fn main() {
    let scratch = tempfile::tempdir().unwrap();
    let plugins = agent_host::plugins::builtin_plugins_dir().expect("built-in plugins built");
    println!("## serve: start to first 200 on /ping (plugins from a warm cache)");
    let mut starts = Vec::new();
    let mut rss_kb = 0;
    for round in 0..11 {
        let port = free_port();
        let start = Instant::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_agent-host"))
            .args(["serve", "--port", &port.to_string()])
            .env("AGENT_HOST_STATE_DIR", scratch.path())
            .env("AGENT_HOST_PLUGINS_DIR", &plugins)
            .env("AGENT_HOST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("start agent-host serve");
        while !ping_ok(port) {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "serve did not come up"
            );
        }
        let elapsed = start.elapsed();
        if round > 0 {
            // Round 0 fills the compile cache.
            starts.push(elapsed);
        }
        if round == 10 {
            std::thread::sleep(Duration::from_secs(1));
            rss_kb = rss_of(child.id());
        }
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let _ = child.wait();
    }
    println!(
        "median {}  min {}  (10 starts)",
        ms(percentile(&starts, 50.0)),
        ms(percentile(&starts, 0.0))
    );
    println!("idle RSS of serve: {:.1} MB", rss_kb as f64 / 1024.0);

    println!("\n## /ping while 10 tasks are busy");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let port = runtime.block_on(async {
        let users: Vec<String> = (0..10).map(|i| format!("u{i}")).collect();
        let users = Arc::new(Users::new(scratch.path().join("ws"), users));
        let state = AppState::new(users, Arc::new(Sleeper), ServerSettings::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(agent_host::server::serve(
            listener,
            state,
            std::future::pending(),
        ));
        port
    });
    for i in 0..10 {
        let body = format!(r#"{{"prompt":"wait","user_id":"u{i}"}}"#);
        let (status, _) = request(port, "POST", "/invocations", &body);
        assert_eq!(status, 200);
    }
    let (_, busy) = request(port, "GET", "/ping", "");
    assert!(busy.contains("HealthyBusy"), "{busy}");
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_nodelay(true).unwrap();
    let samples: Vec<Duration> = (0..20_000)
        .map(|_| {
            let start = Instant::now();
            keep_alive_ping(&mut stream);
            start.elapsed()
        })
        .collect();
    println!(
        "sequential keep-alive pings (20,000): p50 {}  p99 {}  max {}",
        us(percentile(&samples, 50.0)),
        us(percentile(&samples, 99.0)),
        us(percentile(&samples, 100.0))
    );
    match Command::new("wrk")
        .args([
            "-t2",
            "-c16",
            "-d5s",
            "--latency",
            &format!("http://127.0.0.1:{port}/ping"),
        ])
        .output()
    {
        Ok(output) => {
            let text = String::from_utf8_lossy(&output.stdout);
            println!("wrk -t2 -c16 -d5s --latency:");
            for line in text.lines().filter(|l| {
                let l = l.trim_start();
                l.starts_with("50%")
                    || l.starts_with("99%")
                    || l.starts_with("Requests/sec")
                    || l.starts_with("Latency")
            }) {
                println!("  {}", line.trim());
            }
        }
        Err(_) => println!("(wrk not installed: `apt-get install wrk` for the concurrent figures)"),
    }
    drop(runtime);
}

/// A job that waits (until cancelled), keeping its task registered.
struct Sleeper;

impl JobRunner for Sleeper {
    fn run(&self, job: Job) -> BoxFuture<'static, anyhow::Result<Answer>> {
        Box::pin(async move {
            job.cancel.cancelled().await;
            anyhow::bail!("cancelled")
        })
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn ping_ok(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok_and(|mut stream| {
        let _ =
            stream.write_all(b"GET /ping HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        let mut response = String::new();
        let _ = stream.read_to_string(&mut response);
        response.starts_with("HTTP/1.1 200")
    })
}

fn request(port: u16, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, response)
}

/// One `/ping` on an open keep-alive connection; reads exactly one response.
fn keep_alive_ping(stream: &mut TcpStream) {
    stream
        .write_all(b"GET /ping HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut buffer = [0u8; 1024];
    let mut received = Vec::new();
    loop {
        let n = stream.read(&mut buffer).unwrap();
        assert!(n > 0, "connection closed");
        received.extend_from_slice(&buffer[..n]);
        let text = String::from_utf8_lossy(&received);
        if let Some(head_end) = text.find("\r\n\r\n") {
            let length: usize = text[..head_end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if received.len() >= head_end + 4 + length {
                return;
            }
        }
    }
}

fn rss_of(pid: u32) -> u64 {
    let status = std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("status"))
        .unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}
