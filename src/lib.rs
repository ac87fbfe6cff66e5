//! Verge: a self-hosted CDN edge node. A sharded, thread-per-core caching HTTP/1.1 and HTTP/2 proxy on glommio, with TLS by rustls.
//! See ARCHITECTURE.md for the map of modules and the life of a request.

pub mod cache;
pub mod config;
pub mod http;
pub mod net;
pub mod origin;
pub mod proxy;
pub mod server;
pub mod shard;
pub mod startup;
pub mod tls;
pub mod units;
