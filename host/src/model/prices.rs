//! What a task's tokens cost, estimated from a table of prices per model.
//!
//! Bedrock bills each model id by input, output, cache-read and cache-write tokens. The
//! defaults below are the published on-demand prices (USD per million tokens) of the
//! Claude models this host is meant for; an operator overrides or adds entries with
//! `model_prices` (`PATTERN=input/output/cache_read/cache_write`). A model id matches the
//! first entry whose pattern it contains, the operator's before the defaults. Prices
//! change and regions differ (cross-region profiles, batch, provisioned throughput), so
//! every figure is shown as an estimate.

use std::fmt;

use super::Usage;

/// USD per million tokens of one model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    /// Input tokens not read from the cache.
    pub input: f64,
    /// Output tokens.
    pub output: f64,
    /// Input tokens read from the prompt cache.
    pub cache_read: f64,
    /// Input tokens written to the prompt cache.
    pub cache_write: f64,
}

impl Price {
    /// The estimated cost of `usage`, in USD.
    pub fn cost(&self, usage: &Usage) -> f64 {
        let per_token = |tokens: u64, per_million: f64| tokens as f64 * per_million / 1e6;
        per_token(usage.input_tokens, self.input)
            + per_token(usage.output_tokens, self.output)
            + per_token(usage.cache_read_tokens, self.cache_read)
            + per_token(usage.cache_write_tokens, self.cache_write)
    }
}

impl fmt::Display for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}/{}",
            self.input, self.output, self.cache_read, self.cache_write
        )
    }
}

/// The published prices of the Claude models on Bedrock (on-demand, USD per million
/// tokens), by a pattern their model ids contain.
const DEFAULT_PRICES: &[(&str, Price)] = &[
    ("claude-opus-4-5", price(5.0, 25.0, 0.5, 6.25)),
    ("claude-opus-4", price(15.0, 75.0, 1.5, 18.75)),
    ("claude-sonnet-4", price(3.0, 15.0, 0.3, 3.75)),
    ("claude-3-7-sonnet", price(3.0, 15.0, 0.3, 3.75)),
    ("claude-haiku-4-5", price(1.0, 5.0, 0.1, 1.25)),
    ("claude-3-5-haiku", price(0.8, 4.0, 0.08, 1.0)),
];

const fn price(input: f64, output: f64, cache_read: f64, cache_write: f64) -> Price {
    Price {
        input,
        output,
        cache_read,
        cache_write,
    }
}

/// Prices by model-id pattern: the operator's entries, then the defaults.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PriceTable {
    entries: Vec<(String, Price)>,
}

impl PriceTable {
    /// The defaults with `overrides` (`PATTERN=input/output/cache_read/cache_write`, USD
    /// per million tokens) before them.
    pub fn with_overrides(overrides: &[String]) -> Result<Self, String> {
        let mut entries = Vec::with_capacity(overrides.len());
        for entry in overrides {
            entries.push(parse_entry(entry)?);
        }
        Ok(Self { entries })
    }

    /// The price of `model_id`, if any entry matches it.
    pub fn price(&self, model_id: &str) -> Option<Price> {
        let operator = self.entries.iter().map(|(p, price)| (p.as_str(), *price));
        operator
            .chain(DEFAULT_PRICES.iter().map(|(p, price)| (*p, *price)))
            .find(|(pattern, _)| model_id.contains(pattern))
            .map(|(_, price)| price)
    }
}

fn parse_entry(entry: &str) -> Result<(String, Price), String> {
    let usage = "expected PATTERN=input/output/cache_read/cache_write in USD per million \
                 tokens, e.g. claude-sonnet-4-5=3/15/0.3/3.75";
    let Some((pattern, numbers)) = entry.split_once('=') else {
        return Err(format!("model_prices entry {entry:?}: {usage}"));
    };
    let pattern = pattern.trim();
    let numbers: Vec<f64> = numbers
        .split('/')
        .map(|n| n.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("model_prices entry {entry:?}: {usage}"))?;
    let valid = |n: &f64| n.is_finite() && *n >= 0.0;
    match numbers[..] {
        [input, output, cache_read, cache_write]
            if !pattern.is_empty() && numbers.iter().all(valid) =>
        {
            Ok((
                pattern.to_string(),
                price(input, output, cache_read, cache_write),
            ))
        }
        _ => Err(format!("model_prices entry {entry:?}: {usage}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_models_have_prices_and_costs_add_up() {
        let table = PriceTable::default();
        let sonnet = table
            .price("us.anthropic.claude-sonnet-4-5-20250929-v1:0")
            .unwrap();
        let usage = Usage {
            input_tokens: 1_000_000,
            output_tokens: 100_000,
            cache_read_tokens: 2_000_000,
            cache_write_tokens: 10_000,
            requests: 3,
        };
        let cost = sonnet.cost(&usage);
        assert!((cost - (3.0 + 1.5 + 0.6 + 0.0375)).abs() < 1e-9, "{cost}");
        assert_eq!(
            table.price("global.anthropic.claude-opus-4-5-20251101-v1:0"),
            Some(price(5.0, 25.0, 0.5, 6.25)),
            "the more specific pattern comes first"
        );
        assert_eq!(table.price("amazon.nova-pro-v1:0"), None);
    }

    #[test]
    fn operator_entries_come_first_and_bad_ones_are_named() {
        let table = PriceTable::with_overrides(&[
            "claude-sonnet-4-5=1/2/0.5/1.5".into(),
            "nova-pro = 0.8 / 3.2 / 0 / 0".into(),
        ])
        .unwrap();
        assert_eq!(
            table.price("us.anthropic.claude-sonnet-4-5-v1:0"),
            Some(price(1.0, 2.0, 0.5, 1.5))
        );
        assert_eq!(
            table.price("amazon.nova-pro-v1:0"),
            Some(price(0.8, 3.2, 0.0, 0.0))
        );
        for bad in [
            "sonnet",
            "sonnet=1/2/3",
            "=1/2/3/4",
            "x=1/2/three/4",
            "x=1/-2/3/4",
        ] {
            let error = PriceTable::with_overrides(&[bad.into()]).unwrap_err();
            assert!(error.contains(bad) && error.contains("PATTERN="), "{error}");
        }
    }
}
