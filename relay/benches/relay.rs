//! The relay's own time per delivery (a bench binary): `cargo bench -p agent-host-relay`.
//!
//! A warm Lambda container (secrets cached, connections open) handles Function URL events
//! against local fakes of AgentCore, Secrets Manager and the Bot API: from the event to the
//! answer for Telegram, p50 and p99, for
//! - a message forwarded to its session (the fake AgentCore answers at once, so this is
//!   the relay's share of a delivery: parsing, routing, signing, one HTTP round trip);
//! - a message from a stranger (dropped without an invocation);
//! - a delivery with a wrong secret (401).
//!
//! `BENCH_QUICK=1` runs fewer iterations.

use std::time::{Duration, Instant};

use agent_host_relay::{Relay, RelayConfig};
use agent_host_tests::fake_agentcore::FakeAgentCore;
use agent_host_tests::fake_secrets::FakeSecrets;
use agent_host_tests::relay::{function_url_event, relay_clients};
use serde_json::json;

const TOKEN: &str = "5550001:AAH-bench-token";
const SECRET: &str = "bench-webhook-secret";

fn percentile(samples: &[Duration], p: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[((p / 100.0) * (sorted.len() - 1) as f64).round() as usize]
}

fn main() {
    let iterations = if std::env::var_os("BENCH_QUICK").is_some() {
        200
    } else {
        2000
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let agentcore = FakeAgentCore::start().await;
        let secrets = FakeSecrets::start().await;
        secrets.put("webhook", SECRET);
        secrets.put("token", TOKEN);
        let config = RelayConfig::from_lookup(|name| {
            Some(
                match name {
                    "RELAY_RUNTIME_ARN" => {
                        "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/bench-Ab12"
                    }
                    "RELAY_WEBHOOK_SECRET_ID" => "webhook",
                    "RELAY_BOT_TOKEN_SECRET_ID" => "token",
                    "RELAY_ALLOWED_USERS" => "42",
                    "RELAY_TELEGRAM_API_BASE_URL" => "http://127.0.0.1:9",
                    _ => return None,
                }
                .to_string(),
            )
        })
        .unwrap();
        let relay = Relay::new(config, relay_clients(&agentcore, &secrets));
        let cases = [
            ("forwarded to its session", 42, SECRET),
            ("a stranger, dropped", 666, SECRET),
            ("a wrong secret, 401", 42, "guess"),
        ];
        println!("relay: from the Function URL event to the answer for Telegram ({iterations} deliveries each, warm)");
        for (name, user, secret) in cases {
            let mut samples = Vec::with_capacity(iterations);
            for round in 0..iterations + 50 {
                let update = json!({"update_id": round, "message": {"message_id": round,
                    "date": 1, "from": {"id": user, "is_bot": false, "first_name": "U"},
                    "chat": {"id": user, "type": "private"},
                    "text": "fix the failing test in src/lib.rs and run cargo test"}});
                let body = update.to_string();
                let request = function_url_event(body.as_bytes(), Some(secret), false);
                let started = Instant::now();
                let response = relay.handle(request).await;
                let elapsed = started.elapsed();
                assert!(response.status().as_u16() < 500);
                if round >= 50 {
                    samples.push(elapsed);
                }
            }
            println!(
                "  {name:<26} p50 {:>7.1} µs   p99 {:>7.1} µs",
                percentile(&samples, 50.0).as_secs_f64() * 1e6,
                percentile(&samples, 99.0).as_secs_f64() * 1e6
            );
        }
        println!(
            "  ({} invocations recorded by the fake AgentCore)",
            agentcore.invocations().len()
        );
    });
}
