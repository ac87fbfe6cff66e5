//! What the cache holds for one URL: the response head as Verge forwards it, the body, and the timing
//! facts that RFC 9111 needs to compute Age and freshness later.
//! Invariants: `ResponseMeta::headers` hold no hop-by-hop, framing (Content-Length, Transfer-Encoding) or
//! Age fields (Verge writes those per response); a `StoredObject` is complete: `body_len` bytes were
//! received and the origin's framing was satisfied.

use super::cache_control::CacheControl;
use super::policy;
use crate::http::headers::Headers;
use bytes::Bytes;
use std::time::{Duration, SystemTime};

/// The request-header values a response varies on (its `Vary` fields), captured from the request
/// that fetched it. Names are lower-case.
#[derive(Clone, Debug, Default)]
pub struct VarySpec(Vec<(String, Option<Bytes>)>);

impl VarySpec {
    /// Captures the values of the fields named by `resp`'s Vary from `req`. `None` if Vary is `*`.
    pub fn capture(resp: &Headers, req: &Headers) -> Option<Self> {
        let mut v = Vec::new();
        for name in resp.list("vary") {
            if name == b"*" {
                return None;
            }
            let name = String::from_utf8_lossy(name).to_ascii_lowercase();
            let value = join_values(req, &name);
            v.push((name, value));
        }
        Some(VarySpec(v))
    }

    /// True when `req` carries the same values for every varying field.
    pub fn matches(&self, req: &Headers) -> bool {
        self.0
            .iter()
            .all(|(name, value)| join_values(req, name).as_deref() == value.as_deref())
    }

    /// True when the response does not vary (no `Vary`, or an empty one).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The varying field names, lower-case, in `Vary` order.
    pub fn names(&self) -> Vec<String> {
        self.0.iter().map(|(n, _)| n.clone()).collect()
    }

    /// The captured values, in `names()` order (`None`: the field was absent).
    pub fn values(&self) -> impl Iterator<Item = Option<&[u8]>> {
        self.0.iter().map(|(_, v)| v.as_deref())
    }
}

/// The normalised value of field `name` in `h` (None when absent), as used to match variants:
/// list elements trimmed of whitespace and joined with ", "; for the negotiation fields whose
/// element order and case carry no meaning (Accept-Encoding, Accept-Language), elements are also
/// lower-cased and sorted, so `br, gzip` and `gzip,br` select the same variant.
pub fn join_values(h: &Headers, name: &str) -> Option<Bytes> {
    if !h.contains(name) {
        return None;
    }
    let order_free = name.eq_ignore_ascii_case("accept-encoding")
        || name.eq_ignore_ascii_case("accept-language");
    let mut elements: Vec<Vec<u8>> = h
        .list(name)
        .map(|e| {
            if order_free {
                e.iter()
                    .filter(|b| !b.is_ascii_whitespace())
                    .map(|b| b.to_ascii_lowercase())
                    .collect()
            } else {
                e.to_vec()
            }
        })
        .collect();
    if order_free {
        elements.sort();
        elements.dedup();
    }
    Some(Bytes::from(elements.join(&b", "[..])))
}

/// The response head Verge forwards and stores.
#[derive(Debug)]
pub struct ResponseMeta {
    pub status: u16,
    pub reason: Bytes,
    /// End-to-end fields as forwarded (see module invariants).
    pub headers: Headers,
    /// `HTTP/1.1 <status> <reason>\r\n` + `headers`, serialised once; framing and per-response
    /// fields (Age, Cache-Status, X-Cache, Via, Connection) are appended when a response is written.
    pub head: Bytes,
    pub vary: VarySpec,
    /// `headers` as an HTTP/2 field map, built on the first HTTP/2 hit (`None` inside: some field
    /// cannot be carried by HTTP/2).
    h2_fields: std::sync::OnceLock<Option<http::HeaderMap>>,
}

impl ResponseMeta {
    pub fn new(status: u16, reason: &[u8], headers: Headers, vary: VarySpec) -> Self {
        let mut out = Vec::with_capacity(256);
        crate::http::write::status_line(&mut out, status, reason);
        headers.write_to(&mut out);
        ResponseMeta {
            status,
            reason: Bytes::copy_from_slice(reason),
            headers,
            head: Bytes::from(out),
            vary,
            h2_fields: std::sync::OnceLock::new(),
        }
    }

    /// The stored fields as an HTTP/2 field map (built once per object), or `None` when one of
    /// them cannot be sent over HTTP/2.
    pub fn h2_fields(&self) -> Option<&http::HeaderMap> {
        self.h2_fields
            .get_or_init(|| crate::http::h2_fields::from_headers(&self.headers))
            .as_ref()
    }
}

/// How fresh a response is and how old it was on arrival (RFC 9111 §4.2).
#[derive(Clone, Debug)]
pub struct Freshness {
    pub response_time: SystemTime,
    pub corrected_initial_age: Duration,
    pub lifetime: Duration,
    pub cc: CacheControl,
}

impl Freshness {
    pub fn age(&self, now: SystemTime) -> Duration {
        policy::current_age(self.corrected_initial_age, self.response_time, now)
    }
}

/// A complete response in the cache.
#[derive(Debug)]
pub struct StoredObject {
    pub meta: std::sync::Arc<ResponseMeta>,
    pub body: Vec<Bytes>,
    pub body_len: u64,
    pub freshness: Freshness,
    /// Set for a stored 206: the body holds bytes `start..start + body_len` of a representation of
    /// `complete_len` bytes, and only ranges inside it may be answered from it.
    pub partial: Option<PartialSpan>,
    /// Written to the disk tier (so a later hit does not write it again).
    pub on_disk: std::sync::atomic::AtomicBool,
    /// Larger than the RAM tier takes: only on disk (as a chunk chain), `body` is empty and the
    /// body is streamed from disk by `proxy::disk_stream`; never revalidated in place.
    pub disk_only: bool,
}

/// Where a stored partial response sits in its complete representation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartialSpan {
    pub start: u64,
    pub complete_len: u64,
}

impl PartialSpan {
    /// Parses a single-range `Content-Range: bytes a-b/len` whose span holds `body_len` bytes.
    pub fn from_content_range(value: &[u8], body_len: u64) -> Option<Self> {
        let v = std::str::from_utf8(value).ok()?.trim();
        let rest = v.strip_prefix("bytes ")?;
        let (span, len) = rest.split_once('/')?;
        let (a, b) = span.split_once('-')?;
        let (start, end, complete_len): (u64, u64, u64) =
            (a.parse().ok()?, b.parse().ok()?, len.parse().ok()?);
        (start <= end && end < complete_len && end - start + 1 == body_len).then_some(PartialSpan {
            start,
            complete_len,
        })
    }
}

/// What one field costs in an HTTP/2 field map: its name, its value and the map's bookkeeping.
const H2_FIELD_CHARGE: usize = std::mem::size_of::<(http::HeaderName, http::HeaderValue)>() + 16;

impl StoredObject {
    /// Bytes charged to the RAM budget for this object (head, fields, body; the tier adds its own overhead).
    /// The HTTP/2 field map, built later on the first HTTP/2 hit, is charged up front.
    pub fn charge(&self, key_bytes: usize) -> u64 {
        (self.meta.head.len()
            + self.meta.headers.heap_bytes()
            + self.meta.headers.len() * H2_FIELD_CHARGE
            + key_bytes
            + self.body.len() * std::mem::size_of::<Bytes>()
            + std::mem::size_of::<Self>()
            + std::mem::size_of::<ResponseMeta>()) as u64
            + self.body_len
    }

    /// True when the stored response carries a validator (ETag or Last-Modified), so that a stale copy
    /// can be revalidated with a conditional request instead of fetched again.
    pub fn has_validators(&self) -> bool {
        self.meta.headers.contains("etag") || self.meta.headers.contains("last-modified")
    }

    /// How long past its freshness this object is at `now` (zero while fresh).
    pub fn staleness(&self, now: SystemTime) -> Duration {
        self.freshness
            .age(now)
            .saturating_sub(self.freshness.lifetime)
    }

    /// True when the response forbids serving it stale (RFC 9111 §4.2.4): must-revalidate,
    /// proxy-revalidate, s-maxage (proxy-revalidate for a shared cache) or no-cache.
    pub fn stale_forbidden(&self) -> bool {
        let cc = &self.freshness.cc;
        cc.must_revalidate || cc.proxy_revalidate || cc.s_maxage.is_some() || cc.no_cache
    }

    /// Within its `stale-while-revalidate` window at `now` (and stale serving not forbidden).
    pub fn within_stale_while_revalidate(&self, now: SystemTime) -> bool {
        if self.freshness.cc.no_cache {
            return false;
        }
        match self.freshness.cc.stale_while_revalidate {
            Some(swr) if !self.stale_forbidden() => self.staleness(now) < Duration::from_secs(swr),
            _ => false,
        }
    }

    /// RFC 9111 §3.5: a response that may be shared with requests carrying `Authorization` (it says
    /// public, must-revalidate or s-maxage).
    pub fn shareable_with_authorization(&self) -> bool {
        let cc = &self.freshness.cc;
        cc.public || cc.must_revalidate || cc.s_maxage.is_some()
    }

    /// For a stored partial response: the request's single range, if it lies inside the stored span
    /// (translated to offsets in the stored body). `None` means this object cannot answer `req`.
    pub fn covered_range(&self, req: &Headers) -> Option<crate::http::range::ByteRange> {
        use crate::http::range::{decide, ByteRange, RangeDecision};
        let p = self.partial?;
        match decide(req, true, &self.meta.headers, p.complete_len, 64) {
            RangeDecision::Single(r) if r.start >= p.start && r.end < p.start + self.body_len => {
                Some(ByteRange {
                    start: r.start - p.start,
                    end: r.end - p.start,
                })
            }
            _ => None,
        }
    }

    /// Whether this object may answer `req` without contacting the origin at `now`.
    pub fn usable_for(&self, req: &Headers, now: SystemTime) -> bool {
        (!req.contains("authorization") || self.shareable_with_authorization())
            && self.meta.vary.matches(req)
            && policy::reusable_without_validation(
                req,
                &self.freshness.cc,
                self.freshness.age(now),
                self.freshness.lifetime,
            )
    }
}

/// A stored 200 of `len` zero bytes, fresh for 60 s from now; with `Vary: Accept` when `vary`, and
/// as a stored 206 (a tenth of a larger representation) when `partial`. For tests.
#[cfg(test)]
pub(crate) fn test_object(len: usize, vary: bool, partial: bool) -> StoredObject {
    let mut resp = Headers::new();
    if vary {
        resp.push("Vary", "Accept");
    }
    let v = VarySpec::capture(&resp, &Headers::new()).unwrap();
    StoredObject {
        meta: std::sync::Arc::new(ResponseMeta::new(200, b"OK", Headers::new(), v)),
        body: vec![Bytes::from(vec![0u8; len])],
        body_len: len as u64,
        freshness: Freshness {
            response_time: SystemTime::now(),
            corrected_initial_age: Duration::ZERO,
            lifetime: Duration::from_secs(60),
            cc: CacheControl::default(),
        },
        partial: partial.then_some(PartialSpan {
            start: 0,
            complete_len: 10 * len as u64,
        }),
        on_disk: Default::default(),
        disk_only: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vary_matches_normalised_values() {
        let mut resp = Headers::new();
        resp.push("Vary", "Accept-Encoding");
        let mut r1 = Headers::new();
        r1.push("Accept-Encoding", "gzip,  br");
        let spec = VarySpec::capture(&resp, &r1).unwrap();
        let mut r2 = Headers::new();
        r2.push("accept-encoding", "gzip, br");
        assert!(spec.matches(&r2));
        let mut r3 = Headers::new();
        r3.push("Accept-Encoding", "identity");
        assert!(!spec.matches(&r3));
        assert!(!spec.matches(&Headers::new()));
        let mut star = Headers::new();
        star.push("Vary", "*");
        assert!(VarySpec::capture(&star, &r1).is_none());
    }
}
