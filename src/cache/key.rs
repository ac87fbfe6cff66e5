//! The cache key: scheme, host and path+query of a request (CloudFront's default key), normalised so that
//! equivalent requests share an entry, and the key's owner shard.
//! Invariants: the host is lower-cased and carries no default port; the owner of a key is the same on
//! every shard of one process (the hash has fixed seeds), so every shard routes a key to the same owner.

use std::borrow::Cow;
use std::fmt;

/// A normalised cache key, e.g. `http://example.com/a?b=1`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CacheKey(Box<str>);

fn route_hasher() -> ahash::RandomState {
    ahash::RandomState::with_seeds(
        0x5645_5247_455f_5348,
        0x4152_445f_524f_5554,
        0x0123_4567_89ab_cdef,
        0xfedc_ba98_7654_3210,
    )
}

impl CacheKey {
    /// Builds the key from the parts of a request. `host` may carry a port; `:80` is dropped for http.
    pub fn new(scheme: &str, host: &[u8], path_and_query: &[u8]) -> Self {
        let host = utf8_lossy(host);
        let host = match host.strip_suffix(":80") {
            Some(bare) if scheme == "http" => bare,
            _ => &host,
        };
        let path = utf8_lossy(path_and_query);
        // One allocation for the whole key: the host is lower-cased in place.
        let mut s = String::with_capacity(scheme.len() + 3 + host.len() + path.len());
        s.push_str(scheme);
        s.push_str("://");
        let host_at = s.len();
        s.push_str(host);
        s[host_at..].make_ascii_lowercase();
        s.push_str(&path);
        CacheKey(s.into_boxed_str())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The shard (0..shards) that owns this key's fills, uncacheable marks and RAM entry.
    pub fn owner(&self, shards: usize) -> usize {
        if shards <= 1 {
            return 0;
        }
        (self.route_hash() % shards as u64) as usize
    }

    /// The key's hash with the process-wide fixed seeds (the same on every shard).
    pub fn route_hash(&self) -> u64 {
        route_hasher().hash_one(&self.0)
    }

    /// The key of one variant of this URL (a response with `Vary`): the primary key, the generation of
    /// the URL's variant index, and the normalised values of the varying request fields. Variant keys
    /// only ever live in the owner's RAM tier, never route.
    pub fn variant<'a>(
        &self,
        generation: u64,
        names_values: impl Iterator<Item = (&'a str, Option<&'a [u8]>)>,
    ) -> Self {
        let mut s = String::with_capacity(self.0.len() + 32);
        s.push_str(&self.0);
        s.push_str("\0v");
        s.push_str(itoa::Buffer::new().format(generation));
        for (n, v) in names_values {
            s.push('\0');
            s.push_str(n);
            match v {
                Some(v) => {
                    s.push('=');
                    s.push_str(&String::from_utf8_lossy(v));
                }
                None => s.push('!'),
            }
        }
        CacheKey(s.into_boxed_str())
    }

    /// Heap bytes held by the key (for cache accounting).
    pub fn heap_bytes(&self) -> usize {
        self.0.len()
    }
}

/// `bytes` as text, invalid sequences replaced. Request targets and hosts are ASCII on the wire,
/// so the ASCII check nearly always suffices; `from_utf8_lossy` decodes more slowly even when
/// there is nothing to replace.
fn utf8_lossy(bytes: &[u8]) -> Cow<'_, str> {
    if bytes.is_ascii() {
        // SAFETY: ASCII is valid UTF-8. (`is_ascii` checks a word at a time; `from_utf8` took
        // several times as long on these short strings.)
        Cow::Borrowed(unsafe { std::str::from_utf8_unchecked(bytes) })
    } else {
        String::from_utf8_lossy(bytes)
    }
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CacheKey({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_host_and_port() {
        let a = CacheKey::new("http", b"Example.COM:80", b"/a?b=1");
        let b = CacheKey::new("http", b"example.com", b"/a?b=1");
        assert_eq!(a, b);
        assert_eq!(a.as_str(), "http://example.com/a?b=1");
        assert_ne!(a, CacheKey::new("http", b"example.com:8080", b"/a?b=1"));
        assert_ne!(a, CacheKey::new("http", b"example.com", b"/a?b=2"));
        // Only http's default port is dropped, and the path keeps its case.
        assert_eq!(
            CacheKey::new("https", b"EXAMPLE.com:80", b"/A").as_str(),
            "https://example.com:80/A"
        );
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        let k = CacheKey::new("http", b"H\xff", b"/a\xc3b");
        assert_eq!(k.as_str(), "http://h\u{fffd}/a\u{fffd}b");
    }

    #[test]
    fn owner_is_stable_and_spread() {
        let mut seen = [0usize; 4];
        for i in 0..1000 {
            let k = CacheKey::new("http", b"h", format!("/{i}").as_bytes());
            assert_eq!(k.owner(4), k.clone().owner(4));
            seen[k.owner(4)] += 1;
        }
        assert!(seen.iter().all(|&n| n > 150), "{seen:?}");
    }
}
