//! Task API errors: a gRPC status code containerd maps to its error kinds
//! (`NotFound` for "process already finished", `AlreadyExists`, …) and a
//! message.

use std::fmt;

use containerd_shim::protos::ttrpc::{self, Code};

use crate::runtime::RuntimeError;

#[derive(Debug)]
pub(crate) struct RpcError {
    pub(crate) code: Code,
    pub(crate) message: String,
}

pub(crate) type RpcResult<T> = Result<T, RpcError>;

impl RpcError {
    pub(crate) fn new(code: Code, message: impl Into<String>) -> RpcError {
        RpcError {
            code,
            message: message.into(),
        }
    }

    pub(crate) fn not_found(message: impl Into<String>) -> RpcError {
        RpcError::new(Code::NOT_FOUND, message)
    }

    pub(crate) fn precondition(message: impl Into<String>) -> RpcError {
        RpcError::new(Code::FAILED_PRECONDITION, message)
    }

    pub(crate) fn internal(message: impl Into<String>) -> RpcError {
        RpcError::new(Code::INTERNAL, message)
    }
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.code, self.message)
    }
}

impl From<RuntimeError> for RpcError {
    fn from(e: RuntimeError) -> RpcError {
        let code = if e.is_not_found() {
            Code::NOT_FOUND
        } else {
            Code::UNKNOWN
        };
        RpcError::new(code, e.to_string())
    }
}

impl From<anyhow::Error> for RpcError {
    fn from(e: anyhow::Error) -> RpcError {
        RpcError::internal(format!("{e:#}"))
    }
}

impl From<RpcError> for ttrpc::Error {
    fn from(e: RpcError) -> ttrpc::Error {
        ttrpc::Error::RpcStatus(ttrpc::get_status(e.code, e.message))
    }
}
