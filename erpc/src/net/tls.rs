//! TEMPORARY STUB (replaced by the leaf branch).
#![allow(missing_docs)]
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("tls")]
    X,
}
