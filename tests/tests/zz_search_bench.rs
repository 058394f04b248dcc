//! TEMPORARY benchmark scratch (search helper); deleted before hand-off.
use agent_host_tests::Fixture;
use serde_json::json;
use std::time::Instant;

fn corpus(fx: &Fixture) {
    let words = [
        "alpha", "beta", "gamma", "delta", "let", "fn", "struct", "impl", "return", "value", "the",
        "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "error", "result",
    ];
    let mut seed: u64 = 0x9e3779b97f4a7c15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for d in 0..200 {
        for f in 0..100 {
            let mut text = String::with_capacity(11000);
            while text.len() < 10_000 {
                let n = 6 + (next() % 8) as usize;
                for i in 0..n {
                    if i > 0 {
                        text.push(' ');
                    }
                    text.push_str(words[(next() % words.len() as u64) as usize]);
                }
                text.push('\n');
            }
            if (d * 100 + f) % 2000 == 7 {
                text.push_str("fn needle_function(x: u32) -> NEEDLE_XYZ {}\n");
            }
            fx.write(&format!("dir{d:03}/file{f:03}.rs"), text);
        }
    }
}

#[test]
fn bench() {
    let fx = Fixture::new();
    let t = Instant::now();
    corpus(&fx);
    eprintln!(
        "corpus written in {:?} at {}",
        t.elapsed(),
        fx.root().display()
    );
    fx.ok(
        "Grep",
        json!({"pattern": "warmup_nothing", "path": fx.p("dir000")}),
    );
    let cases = [
        json!({"pattern": "NEEDLE_XYZ"}),
        json!({"pattern": "NEEDLE_XYZ", "output_mode": "content"}),
        json!({"pattern": "fn\\s+needle_\\w+", "output_mode": "content"}),
        json!({"pattern": "needle_xyz", "-i": true}),
        json!({"pattern": "lazy dog", "output_mode": "count"}),
        json!({"pattern": "lazy dog"}),
        json!({"pattern": "quick", "output_mode": "content"}),
    ];
    for case in cases {
        for _ in 0..3 {
            let t = Instant::now();
            let out = fx.ok("Grep", case.clone());
            eprintln!(
                "{:>8.1} ms  {}  -> {} chars, first: {:?}",
                t.elapsed().as_secs_f64() * 1000.0,
                case,
                out.len(),
                out.lines().next()
            );
        }
    }
    let t = Instant::now();
    let out = fx.ok("Glob", json!({"pattern": "**/*.rs"}));
    eprintln!(
        "{:>8.1} ms  Glob **/*.rs -> {} chars",
        t.elapsed().as_secs_f64() * 1000.0,
        out.len()
    );
    let t = Instant::now();
    let out = fx.ok("Glob", json!({"pattern": "dir1*/file00*.rs"}));
    eprintln!(
        "{:>8.1} ms  Glob dir1*/file00*.rs -> {} chars",
        t.elapsed().as_secs_f64() * 1000.0,
        out.len()
    );
    if std::env::var("KEEP").is_ok() {
        let _ = std::fs::remove_dir_all("/tmp/sbench/ws");
        std::process::Command::new("cp")
            .args(["-r", &fx.root().display().to_string(), "/tmp/sbench/ws"])
            .status()
            .unwrap();
    }
}
