//! Helpers shared by the bench binaries.

// Each bench binary compiles its own copy of this module and uses only part of it.
#![allow(dead_code)]

use std::time::Duration;

/// The `p`-th percentile (0–100) of `samples`, nearest rank.
pub fn percentile(samples: &[Duration], p: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[((p / 100.0) * (sorted.len() - 1) as f64).round() as usize]
}

/// Milliseconds, one decimal.
pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// Microseconds, one decimal.
pub fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

/// One row of calls: `label`, how many, and their percentiles.
pub fn print_calls(label: &str, samples: &[Duration]) {
    println!(
        "{label}, {} calls: median {}  p90 {}  p99 {}  min {}",
        samples.len(),
        us(percentile(samples, 50.0)),
        us(percentile(samples, 90.0)),
        us(percentile(samples, 99.0)),
        us(percentile(samples, 0.0))
    );
}
