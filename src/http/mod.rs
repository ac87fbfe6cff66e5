//! HTTP/1.1 on the wire: strict parsing of request and response heads (RFC 9112), the chunked codec,
//! header lists, hop-by-hop rules and response serialisation (and the same fields as an HTTP/2
//! map). Nothing here does I/O or knows about caching.

pub mod chunked;
pub mod framing;
pub mod h2_fields;
pub mod headers;
pub mod hop;
pub mod range;
pub mod request;
pub mod response;
pub mod write;
