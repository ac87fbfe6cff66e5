//! The byte form of a stored response's head and freshness facts, kept as the disk tier's opaque
//! record meta (the body is the record body). Versioned; decoding checks every length, so a record
//! from another version or a damaged one is refused (`None`), never half-read.

use super::cache_control::CacheControl;
use super::object::{Freshness, ResponseMeta, StoredObject, VarySpec};
use crate::http::headers::Headers;
use bytes::Bytes;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

const VERSION: u8 = 1;

/// Encodes everything but the body. Only objects without Vary are persisted (see `OwnerState`).
pub fn encode(obj: &StoredObject) -> Vec<u8> {
    let m = &obj.meta;
    let f = &obj.freshness;
    let mut out = Vec::with_capacity(m.head.len() + 64);
    out.push(VERSION);
    out.extend_from_slice(&m.status.to_le_bytes());
    put(&mut out, &m.reason);
    let since = f
        .response_time
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    out.extend_from_slice(&since.as_secs().to_le_bytes());
    out.extend_from_slice(&since.subsec_nanos().to_le_bytes());
    out.extend_from_slice(&duration_ms(f.corrected_initial_age).to_le_bytes());
    out.extend_from_slice(&duration_ms(f.lifetime).to_le_bytes());
    // Bit 1: reuse follows no Cache-Control rules (Surrogate-Control governed, or none given);
    // otherwise the stored Cache-Control is parsed again on load.
    out.push(u8::from(f.cc == CacheControl::default()) << 1);
    out.extend_from_slice(&(m.headers.len() as u32).to_le_bytes());
    for (n, v) in m.headers.iter() {
        put(&mut out, n);
        put(&mut out, v);
    }
    out
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn put(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

struct Cursor<'a>(&'a [u8]);
impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

/// Rebuilds the head of an object kept only on disk (its body is streamed from there).
pub fn decode_head(meta: &[u8], body_len: u64) -> Option<StoredObject> {
    let mut obj = decode(meta, Bytes::new())?;
    obj.body_len = body_len;
    obj.disk_only = true;
    Some(obj)
}

/// Rebuilds a stored object from its meta and body; `None` if the meta is not a valid version-1
/// encoding.
pub fn decode(meta: &[u8], body: Bytes) -> Option<StoredObject> {
    let mut c = Cursor(meta);
    if c.u8()? != VERSION {
        return None;
    }
    let status = c.u16()?;
    let reason = c.bytes()?.to_vec();
    let secs = c.u64()?;
    let nanos = c.u32()?;
    let corrected_initial_age = Duration::from_millis(c.u64()?);
    let lifetime = Duration::from_millis(c.u64()?);
    let flags = c.u8()?;
    let n = c.u32()? as usize;
    let mut headers = Headers::with_capacity(n.min(256));
    for _ in 0..n {
        let name = Bytes::copy_from_slice(c.bytes()?);
        let value = Bytes::copy_from_slice(c.bytes()?);
        headers.push(name, value);
    }
    if !c.0.is_empty() || nanos >= 1_000_000_000 {
        return None;
    }
    let cc = if flags & 2 != 0 {
        CacheControl::default()
    } else {
        CacheControl::parse(&headers)
    };
    let response_time = UNIX_EPOCH.checked_add(Duration::new(secs, nanos))?;
    let meta = Arc::new(ResponseMeta::new(
        status,
        &reason,
        headers,
        VarySpec::default(),
    ));
    let body_len = body.len() as u64;
    Some(StoredObject {
        meta,
        body: if body.is_empty() {
            Vec::new()
        } else {
            vec![body]
        },
        body_len,
        freshness: Freshness {
            response_time,
            corrected_initial_age,
            lifetime,
            cc,
        },
        partial: None,
        on_disk: std::sync::atomic::AtomicBool::new(true),
        disk_only: false,
    })
}

/// The body as one contiguous buffer (the disk tier takes a slice).
pub fn body_bytes(obj: &StoredObject) -> Bytes {
    match obj.body.as_slice() {
        [] => Bytes::new(),
        [one] => one.clone(),
        many => {
            let mut v = Vec::with_capacity(obj.body_len as usize);
            for c in many {
                v.extend_from_slice(c);
            }
            Bytes::from(v)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut h = Headers::new();
        h.push("Cache-Control", "max-age=60, must-revalidate");
        h.push("ETag", "\"x\"");
        let obj = StoredObject {
            meta: Arc::new(ResponseMeta::new(
                200,
                b"OK",
                h.clone(),
                VarySpec::default(),
            )),
            body: vec![Bytes::from_static(b"ab"), Bytes::from_static(b"cd")],
            body_len: 4,
            freshness: Freshness {
                response_time: UNIX_EPOCH + Duration::new(1_700_000_000, 5),
                corrected_initial_age: Duration::from_millis(1500),
                lifetime: Duration::from_secs(60),
                cc: CacheControl::parse(&h),
            },
            partial: None,
            on_disk: Default::default(),
            disk_only: false,
        };
        let meta = encode(&obj);
        let back = decode(&meta, body_bytes(&obj)).unwrap();
        assert_eq!(back.meta.status, 200);
        assert_eq!(back.meta.head, obj.meta.head);
        assert_eq!(back.body_len, 4);
        assert_eq!(back.body[0].as_ref(), b"abcd");
        assert_eq!(back.freshness.response_time, obj.freshness.response_time);
        assert_eq!(
            back.freshness.corrected_initial_age,
            obj.freshness.corrected_initial_age
        );
        assert_eq!(back.freshness.lifetime, obj.freshness.lifetime);
        assert!(back.freshness.cc.must_revalidate);
        for cut in 0..meta.len() {
            assert!(decode(&meta[..cut], Bytes::new()).is_none(), "cut at {cut}");
        }
        let mut bad = meta.clone();
        bad[0] = 9;
        assert!(decode(&bad, Bytes::new()).is_none());
    }
}
