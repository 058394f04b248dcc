//! The configuration's values as typed reads of one merged table (the file's keys, then
//! the environment's), each checked against its [`Key`]: its kind and range. An error
//! names the key and where the value came from, never the value of a secret.

use super::keys::{Key, Kind, key, keys};

/// Where the table's values came from: the file (or "configuration") and, per key set
/// from the environment, the variable.
pub struct Values {
    table: toml::Table,
    origin: String,
    from_env: Vec<&'static str>,
}

impl Values {
    /// `table` (from `origin`) with the environment's values laid over it. Refuses keys
    /// that do not exist.
    pub fn new(
        table: toml::Table,
        origin: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Self> {
        let mut values = Self {
            table,
            origin: origin.to_string(),
            from_env: Vec::new(),
        };
        if let Some(unknown) = values
            .table
            .keys()
            .find(|name| *name != "plugins" && key(name).is_none())
        {
            anyhow::bail!(
                "{origin} is not valid: unknown key `{unknown}` (the keys are listed by \
                 `agent-host --help` and in the README)"
            );
        }
        for key in keys() {
            let name = key.env_var();
            let value = env(&name).or_else(|| (key.name == "port").then(|| env("PORT")).flatten());
            if let Some(value) = value {
                let value = from_env(key, &name, value)?;
                values.table.insert(key.name.to_string(), value);
                values.from_env.push(key.name);
            }
        }
        Ok(values)
    }

    /// Where `key`'s value came from, for errors.
    fn source(&self, key: &Key) -> String {
        if self.from_env.contains(&key.name) {
            key.env_var()
        } else {
            self.origin.clone()
        }
    }

    fn get(&self, name: &str, kind: fn(&Kind) -> bool) -> (&'static Key, Option<&toml::Value>) {
        let key = key(name).unwrap_or_else(|| panic!("no configuration key {name}"));
        assert!(
            kind(&key.kind),
            "configuration key {name} read as the wrong kind"
        );
        (key, self.table.get(name))
    }

    fn wrong_type(&self, key: &Key, expected: &str) -> anyhow::Error {
        anyhow::anyhow!("{} in {} must be {expected}", key.name, self.source(key))
    }

    /// A number key's value, checked against its range.
    pub fn number(&self, name: &str) -> anyhow::Result<Option<u64>> {
        let (key, value) = self.get(name, |kind| matches!(kind, Kind::Number { .. }));
        let Kind::Number { min, max } = key.kind else {
            unreachable!("checked by get")
        };
        let Some(value) = value else { return Ok(None) };
        let number = value
            .as_integer()
            .ok_or_else(|| self.wrong_type(key, "a whole number"))?;
        match u64::try_from(number) {
            Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ => anyhow::bail!("{name} = {number} must be between {min} and {max}"),
        }
    }

    /// A flag key's value.
    pub fn flag(&self, name: &str) -> anyhow::Result<Option<bool>> {
        let (key, value) = self.get(name, |kind| *kind == Kind::Flag);
        value
            .map(|value| {
                value
                    .as_bool()
                    .ok_or_else(|| self.wrong_type(key, "true or false"))
            })
            .transpose()
    }

    /// A text (or secret) key's value; empty text counts as not set.
    pub fn text(&self, name: &str) -> anyhow::Result<Option<String>> {
        let (key, value) = self.get(name, |kind| matches!(kind, Kind::Text | Kind::Secret));
        let text = value
            .map(|value| {
                value
                    .as_str()
                    .map(str::to_string)
                    .ok_or_else(|| self.wrong_type(key, "text (in quotes)"))
            })
            .transpose()?;
        Ok(text.filter(|text| !text.trim().is_empty()))
    }

    /// A list key's value: a TOML list of strings, or one comma-separated string.
    pub fn list(&self, name: &str) -> anyhow::Result<Vec<String>> {
        let (key, value) = self.get(name, |kind| *kind == Kind::List);
        let items: Vec<String> = match value {
            None => Vec::new(),
            Some(toml::Value::String(text)) => text.split(',').map(str::to_string).collect(),
            Some(toml::Value::Array(items)) => items
                .iter()
                .map(|item| item.as_str().map(str::to_string))
                .collect::<Option<_>>()
                .ok_or_else(|| self.wrong_type(key, "a list of strings"))?,
            Some(_) => return Err(self.wrong_type(key, "a list of strings")),
        };
        Ok(items
            .into_iter()
            .map(|item| item.trim().to_string())
            .filter(|item| !item.is_empty())
            .collect())
    }

    /// The `[plugins.<name>]` tables.
    pub fn plugins<T: serde::de::DeserializeOwned + Default>(&self) -> anyhow::Result<T> {
        match self.table.get("plugins") {
            None => Ok(T::default()),
            Some(value) => value.clone().try_into().map_err(|e: toml::de::Error| {
                anyhow::anyhow!("[plugins] in {} is not valid: {}", self.origin, e.message())
            }),
        }
    }
}

/// An environment variable's text as the key's TOML value.
fn from_env(key: &Key, variable: &str, value: String) -> anyhow::Result<toml::Value> {
    Ok(match key.kind {
        Kind::Text | Kind::Secret | Kind::List => toml::Value::String(value),
        Kind::Number { .. } => value
            .trim()
            .parse::<i64>()
            .map(toml::Value::Integer)
            .map_err(|_| {
                anyhow::anyhow!(
                    "{variable} = {value:?} is not a number (key `{}`)",
                    key.name
                )
            })?,
        Kind::Flag => match value.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => toml::Value::Boolean(true),
            "0" | "false" | "no" | "off" => toml::Value::Boolean(false),
            _ => anyhow::bail!(
                "{variable} = {value:?} is not true or false (key `{}`)",
                key.name
            ),
        },
    })
}
