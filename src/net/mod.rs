//! The viewer side of the wire: transports (TCP, TLS, one HTTP/2 stream), the HTTP/1.1 connection
//! loop (read, parse, dispatch, write, keep-alive, pipelining, timeouts), the HTTP/2 connection
//! driver and its stream bridge, TLS accept, request-body reading, the viewer protocol policy, and
//! socket send-buffer sizing.

pub mod body;
pub mod conn;
pub mod h2_bridge;
pub mod h2_conn;
pub mod idle;
pub mod listen;
pub mod policy;
pub mod send_buffer;
pub mod tls_accept;
pub mod transport;
