//! Verge's configuration: the typed tree read from TOML, its defaults, and its validation.
//!
//! The embedded `default.toml` is the documentation of every default; `Config::default()` must equal it
//! (a unit test checks this). A user file is read over the defaults (missing keys keep their default,
//! unknown keys are errors), then command-line flags are applied, then `validate` checks every value and
//! names the offending field. Invariant: a `Config` that passed `validate` is safe to start with.

use crate::units::{ByteSize, Millis};
use serde::Deserialize;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// The embedded default configuration file.
pub const DEFAULT_TOML: &str = include_str!("default.toml");

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub http: HttpConfig,
    pub origin: OriginConfig,
    pub cache: CacheConfig,
    pub tls: TlsConfig,
    pub http2: Http2Config,
}

/// TLS for viewers (rustls).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    pub listen: Vec<String>,
    pub cert: String,
    pub key: String,
    /// "1.2" or "1.3".
    pub min_version: String,
    pub handshake_timeout: Millis,
    pub reload_interval: Millis,
    pub session_tickets: bool,
    pub ticket_key_file: String,
    pub session_cache: usize,
    pub sni: Vec<SniCert>,
}

/// A certificate served to viewers asking for one of `names` (exact, or `*.domain` wildcards).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SniCert {
    pub names: Vec<String>,
    pub cert: String,
    pub key: String,
}

/// HTTP/2 for viewers (the `h2` crate) and its limits.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Http2Config {
    pub h2c: bool,
    pub tls: bool,
    pub max_concurrent_streams: u32,
    pub initial_window_size: ByteSize,
    pub connection_window_size: ByteSize,
    pub max_frame_size: ByteSize,
    pub max_send_buffer: ByteSize,
    pub max_concurrent_reset_streams: usize,
    pub max_pending_accept_reset_streams: usize,
    pub max_local_error_reset_streams: usize,
    /// Streams per connection before GOAWAY (clients that do not retry refused streams count
    /// those as failures, so this is far higher than HTTP/1.1's limit).
    pub max_requests_per_connection: u64,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            listen: Vec::new(),
            cert: String::new(),
            key: String::new(),
            min_version: "1.2".into(),
            handshake_timeout: Millis(10_000),
            reload_interval: Millis(5_000),
            session_tickets: true,
            ticket_key_file: String::new(),
            session_cache: 4096,
            sni: Vec::new(),
        }
    }
}

impl Default for Http2Config {
    fn default() -> Self {
        Self {
            h2c: true,
            tls: true,
            max_concurrent_streams: 128,
            initial_window_size: ByteSize(1 << 20),
            connection_window_size: ByteSize(4 << 20),
            max_frame_size: ByteSize(16 << 10),
            max_send_buffer: ByteSize(256 << 10),
            max_concurrent_reset_streams: 50,
            max_pending_accept_reset_streams: 20,
            max_local_error_reset_streams: 1024,
            max_requests_per_connection: 1_000_000,
        }
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: Vec<String>,
    pub shards: usize,
    pub max_connections: usize,
    /// Accept queue length per listener and shard (capped by net.core.somaxconn).
    pub listen_backlog: u32,
    /// A viewer whose handshake RTT is below this many microseconds is "near" (`net::send_buffer`).
    pub near_viewer_rtt_us: u64,
    /// Fixed send buffer for near viewers (0: leave every socket to the kernel's autotuning).
    pub near_viewer_send_buffer: ByteSize,
    pub drain_timeout: Millis,
    pub io_memory: ByteSize,
    pub shard_header: bool,
    /// Cleartext viewers: "allow-all", "redirect-to-https" (301) or "https-only" (403).
    pub viewer_protocol_policy: String,
    /// Per-Host overrides of `viewer_protocol_policy`.
    pub host_policy: std::collections::BTreeMap<String, String>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub max_request_line: usize,
    pub max_header_bytes: ByteSize,
    pub max_headers: usize,
    pub max_request_body: ByteSize,
    pub header_read_timeout: Millis,
    pub body_read_timeout: Millis,
    pub keepalive_timeout: Millis,
    pub max_requests_per_connection: u64,
    pub write_timeout: Millis,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OriginConfig {
    pub url: String,
    pub connect_timeout: Millis,
    pub first_byte_timeout: Millis,
    pub read_timeout: Millis,
    pub pool_idle_timeout: Millis,
    pub max_idle_per_shard: usize,
    pub max_response_header_bytes: ByteSize,
    /// PEM bundle of CAs trusted for https origins; "" = the system's store.
    pub ca_file: String,
    /// Verify an https origin's certificate (never turn off outside a lab: it is logged loudly).
    pub tls_verify: bool,
    /// Server name sent (SNI) and verified for an https origin; "" = the URL's host.
    pub tls_server_name: String,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    pub ram: ByteSize,
    pub max_object_size: ByteSize,
    pub heuristic_fraction: f64,
    pub heuristic_max: Millis,
    pub uncacheable_ttl: Millis,
    pub stale_if_error: Millis,
    pub max_waiters: usize,
    pub collapse_timeout: Millis,
    /// Per shard: bytes of near copies (hot objects owned by other shards, reused without the
    /// owner hop); 0 turns them off.
    pub near_copies: ByteSize,
    /// Largest object kept as a near copy.
    pub near_copy_max_size: ByteSize,
    /// How long a near copy serves hits before the owner is asked again.
    pub near_copy_hold: Millis,
    /// Disk tier locations, "PATH=SIZE" (a directory and the bytes to use there).
    pub disk: Vec<String>,
    pub disk_segment_size: ByteSize,
    pub disk_flush_delay: Millis,
    /// "store" (write when first stored) or "second-hit" (write on the first hit from RAM).
    pub disk_admission: String,
    pub disk_max_object_size: ByteSize,
    /// Bytes the disk tier may write per day (0 = unlimited).
    pub disk_write_budget: ByteSize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: vec!["127.0.0.1:8080".into()],
            shards: 0,
            max_connections: 100_000,
            listen_backlog: 4096,
            near_viewer_rtt_us: 250,
            near_viewer_send_buffer: ByteSize(512 << 10),
            drain_timeout: Millis(10_000),
            io_memory: ByteSize(512 << 10),
            shard_header: false,
            viewer_protocol_policy: "allow-all".into(),
            host_policy: Default::default(),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            max_request_line: 8192,
            max_header_bytes: ByteSize(64 << 10),
            max_headers: 100,
            max_request_body: ByteSize(8 << 30),
            header_read_timeout: Millis(10_000),
            body_read_timeout: Millis(30_000),
            keepalive_timeout: Millis(60_000),
            max_requests_per_connection: 1_000_000,
            write_timeout: Millis(60_000),
        }
    }
}

impl Default for OriginConfig {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:8000".into(),
            connect_timeout: Millis(3_000),
            first_byte_timeout: Millis(30_000),
            read_timeout: Millis(30_000),
            pool_idle_timeout: Millis(15_000),
            max_idle_per_shard: 64,
            max_response_header_bytes: ByteSize(64 << 10),
            ca_file: String::new(),
            tls_verify: true,
            tls_server_name: String::new(),
        }
    }
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            ram: ByteSize(256 << 20),
            max_object_size: ByteSize(64 << 20),
            heuristic_fraction: 0.1,
            heuristic_max: Millis(24 * 3_600_000),
            uncacheable_ttl: Millis(10_000),
            stale_if_error: Millis(0),
            disk: Vec::new(),
            disk_segment_size: ByteSize(64 << 20),
            disk_flush_delay: Millis(1_000),
            disk_admission: "store".into(),
            disk_max_object_size: ByteSize(64 << 30),
            disk_write_budget: ByteSize(0),
            max_waiters: 10_000,
            collapse_timeout: Millis(35_000),
            near_copies: ByteSize(16 << 20),
            near_copy_max_size: ByteSize(64 << 10),
            near_copy_hold: Millis(1_000),
        }
    }
}

/// Why a configuration was refused. Every variant names where the problem is.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("config field `{field}`: {reason}")]
    Invalid { field: &'static str, reason: String },
}

fn invalid(field: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field,
        reason: reason.into(),
    }
}

/// Where the origin is, parsed from `origin.url`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OriginAddr {
    /// `host[:port]` as written in the URL (sent as the Host of fills when the viewer sent none).
    pub authority: String,
    pub host: String,
    pub port: u16,
    /// `https://`: the origin is reached over TLS.
    pub tls: bool,
}

impl Config {
    /// Reads `path` over the defaults.
    pub fn from_file(path: &str) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        Self::from_toml(&text).map_err(|message| ConfigError::Parse {
            path: path.into(),
            message,
        })
    }

    /// Parses TOML text over the defaults. The error text names the key and line (from the toml crate).
    pub fn from_toml(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// Checks every value; the error names the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let s = &self.server;
        if s.listen.is_empty() {
            return Err(invalid("server.listen", "at least one address is needed"));
        }
        for l in &s.listen {
            l.parse::<SocketAddr>()
                .map_err(|e| invalid("server.listen", format!("{l:?}: {e} (use IP:PORT)")))?;
        }
        let cpus = crate::shard::allowed_cpus().len();
        if s.shards > cpus {
            return Err(invalid(
                "server.shards",
                format!(
                    "{} shards but only {cpus} CPUs are available to this process",
                    s.shards
                ),
            ));
        }
        if s.max_connections == 0 {
            return Err(invalid("server.max_connections", "must be at least 1"));
        }
        if s.listen_backlog == 0 {
            return Err(invalid("server.listen_backlog", "must be at least 1"));
        }
        if s.near_viewer_send_buffer.0 > i32::MAX as u64 / 2 {
            return Err(invalid(
                "server.near_viewer_send_buffer",
                "must be below 1 GiB",
            ));
        }
        crate::net::policy::Policy::parse(&s.viewer_protocol_policy)
            .map_err(|e| invalid("server.viewer_protocol_policy", e))?;
        for p in s.host_policy.values() {
            crate::net::policy::Policy::parse(p).map_err(|e| invalid("server.host_policy", e))?;
        }
        self.validate_tls()?;
        let h = &self.http;
        if h.max_request_line < 64 {
            return Err(invalid("http.max_request_line", "must be at least 64"));
        }
        if h.max_header_bytes.0 < 1024 || h.max_header_bytes.0 > (16 << 20) {
            return Err(invalid(
                "http.max_header_bytes",
                "must be between 1KiB and 16MiB",
            ));
        }
        if h.max_headers == 0 || h.max_headers > 1000 {
            return Err(invalid("http.max_headers", "must be between 1 and 1000"));
        }
        for (field, v) in [
            ("http.header_read_timeout", h.header_read_timeout),
            ("http.body_read_timeout", h.body_read_timeout),
            ("http.keepalive_timeout", h.keepalive_timeout),
            ("http.write_timeout", h.write_timeout),
            ("origin.connect_timeout", self.origin.connect_timeout),
            ("origin.first_byte_timeout", self.origin.first_byte_timeout),
            ("origin.read_timeout", self.origin.read_timeout),
            ("origin.pool_idle_timeout", self.origin.pool_idle_timeout),
            ("cache.collapse_timeout", self.cache.collapse_timeout),
        ] {
            if v.0 == 0 {
                return Err(invalid(field, "must be greater than 0"));
            }
        }
        if h.max_requests_per_connection == 0 {
            return Err(invalid(
                "http.max_requests_per_connection",
                "must be at least 1",
            ));
        }
        self.origin_addr()?;
        let c = &self.cache;
        if !(0.0..=1.0).contains(&c.heuristic_fraction) {
            return Err(invalid(
                "cache.heuristic_fraction",
                "must be between 0 and 1",
            ));
        }
        for d in &c.disk {
            parse_disk(d)?;
        }
        if !matches!(c.disk_admission.as_str(), "store" | "second-hit") {
            return Err(invalid(
                "cache.disk_admission",
                format!("{:?}: use \"store\" or \"second-hit\"", c.disk_admission),
            ));
        }
        if c.disk_segment_size.0 < (1 << 20) || c.disk_flush_delay.0 > 60_000 {
            return Err(invalid(
                "cache.disk_segment_size",
                "segments must be at least 1MiB, and cache.disk_flush_delay at most 60s",
            ));
        }
        if c.near_copies.0 > 0 && (c.near_copy_hold.0 == 0 || c.near_copy_hold.0 > 60_000) {
            return Err(invalid(
                "cache.near_copy_hold",
                "must be between 1ms and 60s (or set cache.near_copies = 0)",
            ));
        }
        if c.max_waiters == 0 {
            return Err(invalid("cache.max_waiters", "must be at least 1"));
        }
        Ok(())
    }

    fn validate_tls(&self) -> Result<(), ConfigError> {
        let t = &self.tls;
        for l in &t.listen {
            l.parse::<SocketAddr>()
                .map_err(|e| invalid("tls.listen", format!("{l:?}: {e} (use IP:PORT)")))?;
        }
        if !t.listen.is_empty() && (t.cert.is_empty() || t.key.is_empty()) {
            return Err(invalid(
                "tls.cert",
                "TLS listeners need a default certificate and key (tls.cert, tls.key)",
            ));
        }
        if !matches!(t.min_version.as_str(), "1.2" | "1.3") {
            return Err(invalid("tls.min_version", "use \"1.2\" or \"1.3\""));
        }
        for (field, v) in [
            ("tls.handshake_timeout", t.handshake_timeout),
            ("tls.reload_interval", t.reload_interval),
        ] {
            if v.0 == 0 {
                return Err(invalid(field, "must be greater than 0"));
            }
        }
        for s in &t.sni {
            if s.names.is_empty() {
                return Err(invalid("tls.sni", "every entry needs at least one name"));
            }
        }
        let h = &self.http2;
        if h.max_requests_per_connection == 0 {
            return Err(invalid(
                "http2.max_requests_per_connection",
                "must be at least 1",
            ));
        }
        if h.max_concurrent_streams == 0 {
            return Err(invalid(
                "http2.max_concurrent_streams",
                "must be at least 1",
            ));
        }
        if !(16384..=16_777_215).contains(&h.max_frame_size.0) {
            return Err(invalid(
                "http2.max_frame_size",
                "must be between 16KiB and 16MiB - 1 (RFC 9113 §6.5.2)",
            ));
        }
        for (field, v) in [
            ("http2.initial_window_size", h.initial_window_size.0),
            ("http2.connection_window_size", h.connection_window_size.0),
        ] {
            if !(65_535..=(1 << 31) - 1).contains(&v) {
                return Err(invalid(field, "must be between 65535 and 2^31 - 1"));
            }
        }
        Ok(())
    }

    /// Parses `origin.url` (`http://host[:port]` or `https://host[:port]`, no path).
    pub fn origin_addr(&self) -> Result<OriginAddr, ConfigError> {
        const F: &str = "origin.url";
        let url = self.origin.url.trim();
        let (rest, tls) = if let Some(r) = url.strip_prefix("http://") {
            (r, false)
        } else if let Some(r) = url.strip_prefix("https://") {
            (r, true)
        } else {
            return Err(invalid(
                F,
                format!("{url:?} is not an http:// or https:// URL"),
            ));
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.is_empty() || authority.contains(['/', '?', '#', '@', ' ']) {
            return Err(invalid(
                F,
                format!("{url:?}: expected http://host[:port] with no path"),
            ));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
                let port = p
                    .parse::<u16>()
                    .map_err(|_| invalid(F, format!("{url:?}: bad port {p:?}")))?;
                (h.to_string(), port)
            }
            _ => (authority.to_string(), if tls { 443 } else { 80 }),
        };
        if host.is_empty() || port == 0 {
            return Err(invalid(F, format!("{url:?}: missing host or port")));
        }
        Ok(OriginAddr {
            authority: authority.to_string(),
            host,
            port,
            tls,
        })
    }

    pub fn drain_timeout(&self) -> Duration {
        self.server.drain_timeout.get()
    }
}

/// Parses a `cache.disk` entry, "PATH=SIZE".
pub fn parse_disk(entry: &str) -> Result<(std::path::PathBuf, u64), ConfigError> {
    let (path, size) = entry.rsplit_once('=').ok_or_else(|| {
        invalid(
            "cache.disk",
            format!("{entry:?}: expected PATH=SIZE, e.g. /var/cache/verge=100GiB"),
        )
    })?;
    let size = crate::units::parse_size(size)
        .map_err(|e| invalid("cache.disk", format!("{entry:?}: {e}")))?;
    if path.is_empty() {
        return Err(invalid("cache.disk", format!("{entry:?}: empty path")));
    }
    Ok((std::path::PathBuf::from(path), size))
}

impl OriginAddr {
    /// Resolves the origin (at start-up, once; DNS is not re-read per request).
    pub fn resolve(&self) -> Result<SocketAddr, ConfigError> {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        (host, self.port)
            .to_socket_addrs()
            .map_err(|e| invalid("origin.url", format!("cannot resolve {}: {e}", self.host)))?
            .next()
            .ok_or_else(|| invalid("origin.url", format!("{} has no address", self.host)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_file_equals_default() {
        let parsed = Config::from_toml(DEFAULT_TOML).expect("default.toml parses");
        assert_eq!(parsed, Config::default());
        parsed.validate().expect("defaults are valid");
    }

    #[test]
    fn partial_file_keeps_other_defaults() {
        let c = Config::from_toml("[cache]\nram = \"1GiB\"\n").unwrap();
        assert_eq!(c.cache.ram, ByteSize(1 << 30));
        assert_eq!(c.http, HttpConfig::default());
    }

    #[test]
    fn errors_name_the_field() {
        let e = Config::from_toml("[http]\nmax_headerz = 5\n").unwrap_err();
        assert!(e.contains("max_headerz"), "{e}");
        let e = Config::from_toml("[http]\nmax_headers = \"many\"\n").unwrap_err();
        assert!(e.contains("max_headers"), "{e}");
        let mut c = Config::default();
        c.origin.url = "ftp://x".into();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("origin.url"), "{e}");
        let mut c = Config::default();
        c.server.listen = vec!["nonsense".into()];
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("server.listen"));
    }

    #[test]
    fn origin_url_forms() {
        let mut c = Config::default();
        c.origin.url = "http://example.com".into();
        assert_eq!(c.origin_addr().unwrap().port, 80);
        c.origin.url = "http://127.0.0.1:9000/".into();
        let o = c.origin_addr().unwrap();
        assert_eq!(
            (o.host.as_str(), o.port, o.authority.as_str()),
            ("127.0.0.1", 9000, "127.0.0.1:9000")
        );
        c.origin.url = "http://[::1]:9000".into();
        assert_eq!(c.origin_addr().unwrap().host, "[::1]");
        c.origin.url = "http://h/path".into();
        assert!(c.origin_addr().is_err());
    }
}
