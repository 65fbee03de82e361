//! The error type of the public interface: what can go wrong starting the mock, preparing its
//! test PKI, or calling it through the library's clients, by category, so a caller can tell a
//! port in use from an unreadable certificate without reading text.
//!
//! Inside, the mock builds its messages with `anyhow` (each step adds what it was doing); a
//! public function turns them into one of these categories at its edge, keeping the whole
//! chain in the message: `{}` of an error says everything, and no cause is printed twice by
//! a reporter that walks `source()`.

use std::net::SocketAddr;

/// What went wrong, by category; `Display` says what and why, with the setting to change.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A listener could not be bound.
    #[error("cannot bind {what} to {addr}: {error} ({hint})")]
    Bind {
        /// Which listener.
        what: &'static str,
        /// The address asked for.
        addr: SocketAddr,
        /// What to do about it (the setting that moves the listener).
        hint: String,
        /// The operating system's error (in the message, so not a `source` as well).
        error: std::io::Error,
    },
    /// The ES2+ test PKI (CA, server and client certificates, CRL, admin token) could not be
    /// made, read or used, or a CSR could not be signed.
    #[error("{message}")]
    Pki {
        /// What failed, with its causes.
        message: String,
        /// The operating system's error kind, when a file operation failed (permissions…).
        io_kind: Option<std::io::ErrorKind>,
    },
    /// The GSMA-style PKI of ES9+ could not be made or read.
    #[error(transparent)]
    GsmaPki(#[from] smdpp_rsp::PkiError),
    /// The scenario did not load: its located errors, in the message.
    #[error("loading the scenario: {0}")]
    Scenario(crate::ScenarioErrors),
    /// The state file could not be locked, read or restored.
    #[error("{0}")]
    State(String),
    /// A part of the mock could not start (a TLS configuration, the notification
    /// dispatcher's thread, a temporary folder).
    #[error("{0}")]
    Start(String),
    /// A call through the library's clients failed before an answer arrived (connection,
    /// TLS, a body that is not a JSON object).
    #[error("{0}")]
    Call(String),
    /// A software eUICC could not be made.
    #[error(transparent)]
    Euicc(#[from] smdpp_rsp::EuiccError),
    /// An LPA could not be made.
    #[error(transparent)]
    Lpa(#[from] smdpp_rsp::LpaError),
}

impl From<crate::ScenarioErrors> for Error {
    fn from(errors: crate::ScenarioErrors) -> Self {
        Error::Scenario(errors)
    }
}

/// A result of the public interface.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The whole chain of `e`, one message.
fn chain(e: &anyhow::Error) -> String {
    format!("{e:#}")
}

impl Error {
    /// A PKI failure from an internal error chain, keeping the OS error kind if a file
    /// operation failed.
    pub(crate) fn pki(e: anyhow::Error) -> Self {
        // The OS error kind, found in the chain itself or kept by an inner `Error::Pki`.
        let io_kind = e.chain().find_map(|cause| {
            cause
                .downcast_ref::<std::io::Error>()
                .map(std::io::Error::kind)
                .or_else(|| cause.downcast_ref::<Error>().and_then(Error::io_kind))
        });
        Error::Pki {
            message: chain(&e),
            io_kind,
        }
    }

    /// A state file failure.
    pub(crate) fn state(e: anyhow::Error) -> Self {
        Error::State(chain(&e))
    }

    /// A start-up failure.
    pub(crate) fn start(e: anyhow::Error) -> Self {
        Error::Start(chain(&e))
    }

    /// A failed call.
    pub(crate) fn call(e: anyhow::Error) -> Self {
        Error::Call(chain(&e))
    }

    /// The operating system's error kind, when a file or socket operation failed.
    pub fn io_kind(&self) -> Option<std::io::ErrorKind> {
        match self {
            Error::Pki { io_kind, .. } => *io_kind,
            Error::GsmaPki(smdpp_rsp::PkiError::Io { error, .. }) => Some(error.kind()),
            Error::Bind { error, .. } => Some(error.kind()),
            _ => None,
        }
    }

    /// Whether the operating system refused a file operation for lack of permission.
    pub fn is_permission_denied(&self) -> bool {
        self.io_kind() == Some(std::io::ErrorKind::PermissionDenied)
    }

    /// The message with every cause after it (`what: why: why`), as one line.
    pub fn with_causes(&self) -> String {
        let mut text = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(c) = cause {
            text.push_str(": ");
            text.push_str(&c.to_string());
            cause = c.source();
        }
        text
    }
}

/// Runs a PKI step written with `anyhow`, as a public function's [`Error::Pki`].
pub(crate) fn pki<T>(step: impl FnOnce() -> anyhow::Result<T>) -> Result<T> {
    step().map_err(Error::pki)
}

/// Runs a state file step written with `anyhow`, as a public function's [`Error::State`].
pub(crate) fn state<T>(step: impl FnOnce() -> anyhow::Result<T>) -> Result<T> {
    step().map_err(Error::state)
}
