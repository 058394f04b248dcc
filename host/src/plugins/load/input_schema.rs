//! Checks a tool input against the tool's JSON Schema before the plugin ever sees it, and
//! words the problems the way Claude is used to (`InputValidationError`, one line per
//! problem) so it corrects the call instead of giving up.

use jsonschema::Validator;
use jsonschema::error::{TypeKind, ValidationErrorKind};
use serde_json::Value;

/// A compiled input schema of one tool.
#[derive(Debug)]
pub struct InputSchema {
    tool: String,
    validator: Validator,
}

impl InputSchema {
    /// Compiles `schema` (a JSON text) for tool `tool`. The error says why the schema
    /// itself is unusable (a plugin bug, refused at load).
    pub fn compile(tool: &str, schema: &str) -> Result<Self, String> {
        let value: Value = serde_json::from_str(schema)
            .map_err(|error| format!("the input schema of tool {tool} is not JSON: {error}"))?;
        if value.get("type").and_then(Value::as_str) != Some("object") {
            return Err(format!(
                "the input schema of tool {tool} must describe an object (\"type\": \"object\")"
            ));
        }
        let validator = jsonschema::validator_for(&value)
            .map_err(|error| format!("the input schema of tool {tool} is invalid: {error}"))?;
        Ok(Self {
            tool: tool.to_string(),
            validator,
        })
    }

    /// Parses and validates `input`; the error is the text for the model.
    pub fn check(&self, input: &str) -> Result<Value, String> {
        let value: Value = serde_json::from_str(input).map_err(|error| {
            self.error(&[format!(
                "The input is not valid JSON ({error}); send a JSON object"
            )])
        })?;
        let problems: Vec<String> = self
            .validator
            .iter_errors(&value)
            .map(|e| describe(&e))
            .collect();
        if problems.is_empty() {
            Ok(value)
        } else {
            Err(self.error(&problems))
        }
    }

    fn error(&self, problems: &[String]) -> String {
        let plural = if problems.len() == 1 {
            "issue"
        } else {
            "issues"
        };
        format!(
            "<tool_use_error>InputValidationError: {} failed due to the following {plural}:\n{}</tool_use_error>",
            self.tool,
            problems.join("\n")
        )
    }
}

/// One problem in words: which parameter, what was expected, what was given.
fn describe(error: &jsonschema::ValidationError<'_>) -> String {
    let at = error.instance_path().to_string();
    let parameter = at.trim_start_matches('/').replace('/', ".");
    match error.kind() {
        ValidationErrorKind::Required { property } => {
            let name = property
                .as_str()
                .map_or_else(|| property.to_string(), str::to_string);
            format!(
                "The required parameter `{}` is missing",
                join(&parameter, &name)
            )
        }
        ValidationErrorKind::AdditionalProperties { unexpected } => unexpected
            .iter()
            .map(|name| {
                format!(
                    "An unexpected parameter `{}` was provided",
                    join(&parameter, name)
                )
            })
            .collect::<Vec<_>>()
            .join("\n"),
        ValidationErrorKind::Type { kind } => {
            let expected = match kind {
                TypeKind::Single(one) => one.to_string(),
                TypeKind::Multiple(set) => set
                    .iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(" or "),
            };
            format!(
                "The parameter `{parameter}` type is expected as `{expected}` but provided as `{}`",
                type_name(error.instance())
            )
        }
        _ if parameter.is_empty() => error.to_string(),
        _ => format!("The parameter `{parameter}` is invalid: {error}"),
    }
}

fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}.{name}")
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> InputSchema {
        InputSchema::compile(
            "Read",
            r#"{"type":"object","properties":{"file_path":{"type":"string"},
                "offset":{"type":"integer","minimum":0}},
                "required":["file_path"],"additionalProperties":false}"#,
        )
        .unwrap()
    }

    #[test]
    fn every_problem_gets_a_line() {
        let error = schema().check(r#"{"offset":"3","extra":1}"#).unwrap_err();
        assert!(error.starts_with(
            "<tool_use_error>InputValidationError: Read failed due to the following issues:\n"
        ));
        assert!(
            error.contains("The required parameter `file_path` is missing"),
            "{error}"
        );
        assert!(
            error.contains("An unexpected parameter `extra` was provided"),
            "{error}"
        );
        assert!(
            error.contains(
                "The parameter `offset` type is expected as `integer` but provided as `string`"
            ),
            "{error}"
        );
    }

    #[test]
    fn valid_input_passes_and_bad_json_is_explained() {
        assert!(schema().check(r#"{"file_path":"/w/a"}"#).is_ok());
        assert!(
            schema()
                .check("not json")
                .unwrap_err()
                .contains("not valid JSON")
        );
        assert!(
            schema()
                .check(r#"{"file_path":"/a","offset":-1}"#)
                .unwrap_err()
                .contains("offset")
        );
    }

    #[test]
    fn unusable_schemas_are_refused() {
        assert!(InputSchema::compile("T", "{").is_err());
        assert!(
            InputSchema::compile("T", r#"{"type":"string"}"#)
                .unwrap_err()
                .contains("object")
        );
    }
}
