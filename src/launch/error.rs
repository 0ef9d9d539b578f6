//! The launcher's one error type: what went wrong while setting a sandbox
//! up, with the script position of the step that asked for it when there
//! is one. Rendered once, by `run`; the exit code is always `EXIT_SETUP`.

use crate::plan::{Pos, ValidationError};
use crate::sys::SysError;
use std::fmt;

#[derive(Debug)]
pub struct SetupError {
    pub at: Option<Pos>,
    pub message: String,
}

impl SetupError {
    /// An error caused by the step at `at`.
    pub fn at(at: &Pos, message: impl Into<String>) -> Self {
        SetupError {
            // Line 0: not from a script (the launcher's own steps).
            at: (at.line > 0 || !at.file.is_empty()).then(|| at.clone()),
            message: message.into(),
        }
    }
}

impl From<String> for SetupError {
    fn from(message: String) -> Self {
        SetupError { at: None, message }
    }
}

impl From<SysError> for SetupError {
    fn from(e: SysError) -> Self {
        e.to_string().into()
    }
}

impl From<ValidationError> for SetupError {
    fn from(e: ValidationError) -> Self {
        SetupError {
            at: e.at,
            message: e.message,
        }
    }
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.at {
            Some(at) => write!(f, "{at}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for SetupError {}
