//! The origin side: a per-shard pool of keep-alive HTTP/1.1 connections to the origin (plain TCP, or
//! TLS for https origins), sending requests and reading responses strictly (RFC 9112), with connect,
//! first-byte and read timeouts.

pub mod body;
pub mod error;
pub mod pool;
pub mod stream;

pub use body::OriginBody;
pub use error::OriginError;
pub use pool::{Origin, OriginConn, OriginResponse};
