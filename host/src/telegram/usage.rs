//! What a user's tasks used (`/usage`): tokens of the last task and of all of them, and
//! their cost estimated from the price table.

use serde::{Deserialize, Serialize};

use crate::model::{Price, Usage};

/// Tokens by kind, as Bedrock bills them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tokens {
    /// Input tokens not read from the cache.
    pub input: u64,
    /// Output tokens.
    pub output: u64,
    /// Input tokens read from the prompt cache.
    pub cache_read: u64,
    /// Input tokens written to the prompt cache.
    pub cache_write: u64,
}

impl From<&Usage> for Tokens {
    fn from(usage: &Usage) -> Self {
        Self {
            input: usage.input_tokens,
            output: usage.output_tokens,
            cache_read: usage.cache_read_tokens,
            cache_write: usage.cache_write_tokens,
        }
    }
}

impl std::ops::AddAssign for Tokens {
    fn add_assign(&mut self, other: Self) {
        self.input += other.input;
        self.output += other.output;
        self.cache_read += other.cache_read;
        self.cache_write += other.cache_write;
    }
}

/// One finished task's use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskUsage {
    /// The task.
    pub task_id: String,
    /// The model it used.
    pub model_id: String,
    /// Its tokens.
    pub tokens: Tokens,
    /// Its estimated cost in USD (none when the model has no price).
    pub cost_usd: Option<f64>,
}

/// A user's use, kept across restarts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UserUsage {
    /// The last task.
    pub last: Option<TaskUsage>,
    /// Tasks counted.
    pub tasks: u64,
    /// Their tokens.
    pub tokens: Tokens,
    /// Their estimated cost in USD, of the tasks whose model had a price.
    pub cost_usd: f64,
    /// Tasks whose model had no price (left out of `cost_usd`).
    pub unpriced_tasks: u64,
}

impl UserUsage {
    /// Counts a finished task.
    pub fn add(&mut self, task: TaskUsage) {
        self.tasks += 1;
        self.tokens += task.tokens;
        match task.cost_usd {
            Some(cost) => self.cost_usd += cost,
            None => self.unpriced_tasks += 1,
        }
        self.last = Some(task);
    }
}

/// The cost of `usage` at `price`, if there is one.
pub fn cost(price: Option<Price>, usage: &Usage) -> Option<f64> {
    price.map(|price| price.cost(usage))
}

/// `/usage`'s answer.
pub fn usage_text(usage: &UserUsage, model_id: &str, price: Option<Price>) -> String {
    let Some(last) = &usage.last else {
        return "No task has finished yet, so there is nothing to count.".to_string();
    };
    let mut text = format!(
        "Last task ({}): {}{}.\nAll {} task{}: {}{}.",
        last.task_id,
        tokens_line(&last.tokens),
        last.cost_usd.map(about).unwrap_or_default(),
        usage.tasks,
        if usage.tasks == 1 { "" } else { "s" },
        tokens_line(&usage.tokens),
        if usage.tasks > usage.unpriced_tasks {
            about(usage.cost_usd)
        } else {
            String::new()
        },
    );
    match price {
        Some(price) => text.push_str(&format!(
            "\n\nCosts are estimates from list prices for {model_id} (USD per million tokens: \
             {} input, {} output, {} cache read, {} cache write); the AWS bill is what counts.",
            price.input, price.output, price.cache_read, price.cache_write
        )),
        None => text.push_str(&format!(
            "\n\nNo price is known for {model_id}, so there is no cost estimate: the operator \
             can add one with model_prices."
        )),
    }
    if usage.unpriced_tasks > 0 && price.is_some() {
        text.push_str(&format!(
            " {} earlier task{} without a price {} not in the total.",
            usage.unpriced_tasks,
            if usage.unpriced_tasks == 1 { "" } else { "s" },
            if usage.unpriced_tasks == 1 {
                "is"
            } else {
                "are"
            },
        ));
    }
    text
}

fn tokens_line(tokens: &Tokens) -> String {
    format!(
        "{} tokens in ({} input, {} cache read, {} cache write), {} out",
        group(tokens.input + tokens.cache_read + tokens.cache_write),
        group(tokens.input),
        group(tokens.cache_read),
        group(tokens.cache_write),
        group(tokens.output)
    )
}

/// ` — about $0.42` (cents below a dollar, enough digits to not show zero).
fn about(usd: f64) -> String {
    if usd > 0.0 && usd < 0.01 {
        format!(" — about ${usd:.4}")
    } else {
        format!(" — about ${usd:.2}")
    }
}

/// `1234567` as `1,234,567`.
fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PriceTable;

    fn usage(input: u64, output: u64, cache_read: u64, cache_write: u64) -> Usage {
        Usage {
            input_tokens: input,
            output_tokens: output,
            cache_read_tokens: cache_read,
            cache_write_tokens: cache_write,
            requests: 1,
        }
    }

    #[test]
    fn usage_counts_the_last_task_and_all_of_them_with_estimates() {
        let model = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";
        let price = PriceTable::default().price(model);
        let mut user = UserUsage::default();
        assert!(usage_text(&user, model, price).starts_with("No task"));
        for (task, used) in [
            ("1", usage(1000, 200, 0, 5000)),
            ("2", usage(300, 100, 5000, 0)),
        ] {
            user.add(TaskUsage {
                task_id: task.into(),
                model_id: model.into(),
                tokens: Tokens::from(&used),
                cost_usd: cost(price, &used),
            });
        }
        let text = usage_text(&user, model, price);
        assert!(
            text.starts_with(
                "Last task (2): 5,300 tokens in (300 input, 5,000 cache read, 0 cache write), \
                 100 out — about $0.0039.\nAll 2 tasks: 11,300 tokens in (1,300 input, 5,000 \
                 cache read, 5,000 cache write), 300 out — about $0.03."
            ),
            "{text}"
        );
        assert!(text.contains("estimates"), "{text}");
        let unpriced = usage_text(&user, "amazon.nova-pro-v1:0", None);
        assert!(unpriced.contains("No price is known"), "{unpriced}");
        assert_eq!(group(1_234_567), "1,234,567");
        assert_eq!(group(12), "12");
    }
}
