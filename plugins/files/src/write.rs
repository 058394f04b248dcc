//! `Write`: creates a file or replaces one the model has read.

use std::fs;
use std::io;

use agent_plugin_sdk::Tool;
use agent_plugin_sdk::serde_json::{Value, json};
use serde::Deserialize;

use crate::read_state;
use crate::save::save;
use crate::target::{self, Target};

/// The input of `Write`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteInput {
    file_path: String,
    content: String,
}

/// The `Write` tool.
pub struct Write;

impl Tool for Write {
    const NAME: &'static str = "Write";
    type Input = WriteInput;

    fn description() -> String {
        "Writes a file in the workspace, replacing it if it exists. Missing parent directories \
         are created, and the file is replaced atomically (never left half-written).\n\
         - file_path: an absolute path inside the workspace.\n\
         - Replacing an existing file requires reading it with Read first in this conversation, \
         and fails if it changed on disk since: read it again then.\n\
         - To change part of an existing file, prefer Edit: it sends only the change.\n\
         - Write the file's full contents exactly as they should be saved (no line-number \
         prefixes)."
            .into()
    }

    fn input_schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "file_path": {
                    "type": "string",
                    "description": "Absolute path of the file to write"
                },
                "content": {
                    "type": "string",
                    "description": "The complete contents to save"
                }
            },
            "required": ["file_path", "content"],
            "additionalProperties": false
        })
    }

    fn call(input: WriteInput) -> Result<String, String> {
        let target = target::locate(&input.file_path)?;
        write(&target, &input.content)
    }
}

fn write(target: &Target, content: &str) -> Result<String, String> {
    let shown = target::display(&target.shown);
    match fs::metadata(&target.real) {
        Ok(meta) if meta.is_dir() => Err(format!(
            "{shown} is a directory, so it cannot be written as a file. Give the path of a file \
             (for example {shown}/name.txt)."
        )),
        Ok(meta) if !meta.is_file() => Err(format!(
            "{shown} is not a regular file (it is a device, socket or pipe), so it cannot be written."
        )),
        Ok(meta) => {
            read_state::check_fresh(&target.real, &meta)?;
            save(target, content.as_bytes())?;
            Ok(format!("The file {shown} has been updated successfully."))
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            save(target, content.as_bytes())?;
            Ok(format!("File created successfully at: {shown}"))
        }
        Err(error) => Err(target::io_error(&error, &target.shown)),
    }
}
