//! The viewer side of the wire: the per-connection loop (read, parse, dispatch, write, keep-alive,
//! pipelining, timeouts) and request-body reading.

pub mod body;
pub mod conn;
