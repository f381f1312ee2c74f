//! What stops a conversion or its check.
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("no {what} objects to convert in the given paths")]
    NothingToConvert { what: &'static str },
    #[error("the input has errors, so it cannot be converted faithfully: {count} error(s)")]
    InvalidInput { count: usize },
    #[error("the converted objects do not load ({count} error(s)); this is a bug in sluice convert:\n{details}")]
    InvalidOutput { count: usize, details: String },
    #[error("cannot read {path}: {message}")]
    Read { path: PathBuf, message: String },
}
