//! What the person who asked hears when a task fails.
//!
//! A failed task's error chain is for the operator: it names buckets, endpoints, IAM
//! messages, file paths of the host. It goes to the log whole; the caller gets one
//! sentence that says what kind of failure it was and what to do, and the task id to find
//! the details by.

use crate::model::ModelError;

/// The message for the caller of a failed task `task_id` whose error is `error`.
pub fn user_message(task_id: &str, error: &anyhow::Error, cancelled: bool) -> String {
    if cancelled {
        return "The task was cancelled.".to_string();
    }
    let model = error
        .chain()
        .find_map(|cause| cause.downcast_ref::<ModelError>());
    let what = match model {
        Some(ModelError::Throttled(_) | ModelError::Transient(_)) => {
            "the model service is busy or unreachable right now; try again in a minute"
        }
        Some(ModelError::ContextTooLong(_)) => {
            "the conversation no longer fits the model, even shortened; start a new one"
        }
        Some(
            ModelError::AccessDenied(_)
            | ModelError::UnknownModel(_)
            | ModelError::NotConfigured(_),
        ) => {
            "the model could not be used with this host's configuration; the operator needs to fix it"
        }
        Some(ModelError::InvalidRequest(_)) | None => "the host ran into an internal error",
        Some(ModelError::Cancelled) => return "The task was cancelled.".to_string(),
    };
    format!(
        "The task failed: {what}. The operator can find the details in the host's log under task {task_id}."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_stays_out_of_the_message() {
        let error = anyhow::anyhow!("PutObject on s3://secret-bucket/history failed: AccessDenied")
            .context("cannot save the conversation");
        let message = user_message("7", &error, false);
        assert!(!message.contains("secret-bucket"), "{message}");
        assert!(message.contains("task 7"), "{message}");
        let model = anyhow::Error::new(ModelError::AccessDenied(
            "role arn:aws:iam::1:role/x".into(),
        ));
        let message = user_message("8", &model, false);
        assert!(
            message.contains("operator") && !message.contains("arn:"),
            "{message}"
        );
        assert_eq!(user_message("9", &model, true), "The task was cancelled.");
    }
}
