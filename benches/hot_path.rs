//! Criterion benchmarks of the pieces of Verge's per-request hot path, each measured in isolation
//! through the public library API: parsing a viewer's request head, decoding a chunked origin body,
//! building the cache key and its owner shard, the RFC 9111 storability and freshness decisions, the
//! RAM tier (S3-FIFO) lookups and evicting inserts, writing a cache hit's response head, and the
//! CRC-32 that the disk tier will put on stored blocks.
//!
//! Run with `cargo bench --bench hot_path`; add e.g. `-- parse/` to run one group.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

use verge::cache::cache_control::CacheControl;
use verge::cache::key::CacheKey;
use verge::cache::object::{Freshness, ResponseMeta, StoredObject, VarySpec};
use verge::cache::policy::{self, PolicyConfig};
use verge::http::chunked::{
    write_chunk_header, ChunkedDecoder, ChunkedEvent, CHUNK_TRAILER, LAST_CHUNK,
};
use verge::http::framing::{BodyFraming, HeadLimits};
use verge::http::headers::Headers;
use verge::http::hop::VIA;
use verge::http::request::{parse_request, Method, RequestHead};
use verge::http::write::{field, number_field};
use verge_storage::RamTier;

/// A tiny deterministic PRNG (xorshift64*), so every run looks up the same key sequence.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

// ---------------------------------------------------------------------------------------------
// Request heads: step 2 of the life of a request (`net::conn` reading a viewer's head and
// `http::request::parse_request` parsing it strictly). Every request pays this once.
// ---------------------------------------------------------------------------------------------

/// What h2load sends in an HTTP/1.1 load test (`h2load --h1`): a short GET with 6 fields.
const H2LOAD_REQUEST: &[u8] = b"GET /static/img/logo-256.png HTTP/1.1\r\n\
Host: cdn.example.com\r\n\
User-Agent: h2load nghttp2/1.52.0\r\n\
Accept: */*\r\n\
Accept-Encoding: gzip, deflate\r\n\
X-Request-Id: 7f3c2a9e\r\n\
Connection: keep-alive\r\n\
\r\n";

/// A realistic desktop browser GET of a page asset: 15 fields, about 700 bytes.
const BROWSER_REQUEST: &[u8] = b"GET /assets/js/app.3f9a1c7e.js?v=20240611 HTTP/1.1\r\n\
Host: cdn.example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Safari/537.36\r\n\
Accept: */*\r\n\
Accept-Language: en-GB,en-US;q=0.9,en;q=0.8\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Referer: https://www.example.com/products/widgets?page=2&sort=price\r\n\
Connection: keep-alive\r\n\
Cookie: session=9c2f4e1ab37d4c8e; theme=dark; consent=analytics%3D0%2Cads%3D0\r\n\
Sec-Fetch-Dest: script\r\n\
Sec-Fetch-Mode: no-cors\r\n\
Sec-Fetch-Site: same-site\r\n\
Sec-Ch-Ua: \"Google Chrome\";v=\"125\", \"Chromium\";v=\"125\", \"Not.A/Brand\";v=\"24\"\r\n\
Sec-Ch-Ua-Mobile: ?0\r\n\
Sec-Ch-Ua-Platform: \"Linux\"\r\n\
If-None-Match: \"5d8c72a5edda8d6a:0\"\r\n\
\r\n";

/// Parses one complete head; panics unless it is a keep-alive GET without a body (so the benches
/// below are known to measure the success path).
fn parse_ok(bytes: &[u8], limits: &HeadLimits) -> RequestHead {
    let mut buf = BytesMut::from(bytes);
    let head = parse_request(&mut buf, limits)
        .expect("valid head")
        .expect("complete head");
    assert!(buf.is_empty());
    assert_eq!(head.method, Method::Get);
    assert_eq!(head.framing, BodyFraming::None);
    assert!(head.keep_alive);
    head
}

fn bench_parse_request(c: &mut Criterion) {
    let limits = HeadLimits::default();
    let mut g = c.benchmark_group("parse");
    for (name, raw) in [
        ("request_h2load", H2LOAD_REQUEST),
        ("request_browser", BROWSER_REQUEST),
    ] {
        let head = parse_ok(raw, &limits);
        assert!(head.headers.len() >= 6);
        let template = BytesMut::from(raw);
        g.throughput(Throughput::Bytes(raw.len() as u64));
        // The buffer is refilled outside the timing; dropping the parsed head is timed (the
        // connection drops it once the response is written), freeing the buffer is not.
        g.bench_function(name, |b| {
            b.iter_batched(
                || template.clone(),
                |mut buf| {
                    let head = parse_request(&mut buf, &limits);
                    black_box(&head);
                    drop(head);
                    buf
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

// ---------------------------------------------------------------------------------------------
// Chunked bodies: an origin answering `Transfer-Encoding: chunked` during a fill (step 5,
// `origin::body` feeding `http::chunked::ChunkedDecoder`). Paid per body byte on every miss.
// ---------------------------------------------------------------------------------------------

const BODY_LEN: usize = 64 * 1024;
const CHUNK_LEN: usize = 4 * 1024;

/// A 64 KiB body encoded as sixteen 4 KiB chunks plus the last chunk.
fn chunked_body() -> Vec<u8> {
    let mut out = Vec::with_capacity(BODY_LEN + 16 * 8 + LAST_CHUNK.len());
    let payload: Vec<u8> = (0..CHUNK_LEN).map(|i| (i % 251) as u8).collect();
    for _ in 0..BODY_LEN / CHUNK_LEN {
        write_chunk_header(CHUNK_LEN, &mut out);
        out.extend_from_slice(&payload);
        out.extend_from_slice(CHUNK_TRAILER);
    }
    out.extend_from_slice(LAST_CHUNK);
    out
}

/// Decodes a whole chunked body held in `input`; returns the number of data bytes.
fn decode_all(input: &mut BytesMut) -> usize {
    let mut dec = ChunkedDecoder::new();
    let mut total = 0;
    loop {
        match dec.next(input).expect("valid chunked body") {
            ChunkedEvent::Data(data) => total += black_box(data).len(),
            ChunkedEvent::Done => return total,
            ChunkedEvent::NeedMore => panic!("truncated chunked body"),
        }
    }
}

fn bench_chunked(c: &mut Criterion) {
    let template = BytesMut::from(&chunked_body()[..]);
    assert_eq!(decode_all(&mut template.clone()), BODY_LEN);
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Bytes(BODY_LEN as u64));
    // Each input is 64 KiB, so batches are kept small (LargeInput) to bound memory.
    g.bench_function("chunked_decode_64k", |b| {
        b.iter_batched(
            || template.clone(),
            |mut buf| {
                black_box(decode_all(&mut buf));
                buf
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

// ---------------------------------------------------------------------------------------------
// Cache key: step 4, `proxy::handle` building the key of a cacheable GET and picking the shard
// that owns it (`CacheKey::new` + `owner`). Every cacheable request pays this once.
// ---------------------------------------------------------------------------------------------

fn bench_key(c: &mut Criterion) {
    let host: &[u8] = b"CDN.Example.com:80";
    let path: &[u8] = b"/assets/js/app.3f9a1c7e.js?v=20240611";
    let key = CacheKey::new("http", host, path);
    assert_eq!(
        key.as_str(),
        "http://cdn.example.com/assets/js/app.3f9a1c7e.js?v=20240611"
    );
    let mut g = c.benchmark_group("key");
    g.bench_function("build_and_owner", |b| {
        b.iter(|| {
            let key = CacheKey::new("http", black_box(host), black_box(path));
            let owner = key.owner(black_box(8));
            (key, owner)
        })
    });
    g.finish();
}

// ---------------------------------------------------------------------------------------------
// RFC 9111 policy: step 5, the owner's `fill_task` deciding whether an origin response may be
// stored and for how long (`CacheControl::parse`, `policy::storable`,
// `policy::freshness_lifetime`). Every miss pays this once.
// ---------------------------------------------------------------------------------------------

/// A typical cacheable origin response head (end-to-end fields only, as stored).
fn origin_response_headers() -> Headers {
    let mut h = Headers::with_capacity(8);
    h.push("Date", "Tue, 11 Jun 2024 10:00:00 GMT");
    h.push("Content-Type", "application/javascript; charset=utf-8");
    h.push("Cache-Control", "public, max-age=3600");
    h.push("Last-Modified", "Mon, 03 Jun 2024 08:30:00 GMT");
    h.push("ETag", "\"5d8c72a5edda8d6a:0\"");
    h.push("Vary", "Accept-Encoding");
    h.push("Server", "nginx");
    h
}

fn bench_policy(c: &mut Criterion) {
    let resp = origin_response_headers();
    let req = parse_ok(BROWSER_REQUEST, &HeadLimits::default()).headers;
    let cfg = PolicyConfig::default();
    let response_time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_718_100_000);
    let cc = CacheControl::parse(&resp);
    assert!(cc.public && cc.max_age == Some(3600));
    assert_eq!(policy::storable(b"GET", &req, 200, &resp), Ok(()));
    assert_eq!(
        policy::freshness_lifetime(200, &resp, response_time, &cfg),
        (Duration::from_secs(3600), false)
    );

    let mut g = c.benchmark_group("policy");
    g.bench_function("cache_control_parse", |b| {
        b.iter(|| CacheControl::parse(black_box(&resp)))
    });
    g.bench_function("storable_and_lifetime", |b| {
        b.iter(|| {
            let ok = policy::storable(b"GET", black_box(&req), 200, black_box(&resp));
            let life = policy::freshness_lifetime(200, black_box(&resp), response_time, &cfg);
            (ok, life)
        })
    });
    g.finish();
}

// ---------------------------------------------------------------------------------------------
// RAM tier: the owner shard's `RamTier<CacheKey, Arc<StoredObject>>` (`cache::owner`). A lookup
// runs on every cacheable request (step 4); an insert into the full tier, evicting by S3-FIFO,
// ends every stored fill (step 5).
// ---------------------------------------------------------------------------------------------

const RAM_ENTRIES: usize = 100_000;
/// Body bytes of each benchmark object (a small asset).
const RAM_BODY: u64 = 8 * 1024;

/// One stored object shared (by `Arc`) by every entry: the tier never looks inside values.
fn stored_object() -> Arc<StoredObject> {
    let mut h = origin_response_headers();
    h.retain(|n, _| !n.eq_ignore_ascii_case(b"server"));
    let cc = CacheControl::parse(&h);
    Arc::new(StoredObject {
        meta: Arc::new(ResponseMeta::new(200, b"OK", h, VarySpec::default())),
        body: vec![Bytes::from(vec![0u8; RAM_BODY as usize])],
        body_len: RAM_BODY,
        freshness: Freshness {
            response_time: SystemTime::UNIX_EPOCH + Duration::from_secs(1_718_100_000),
            corrected_initial_age: Duration::ZERO,
            lifetime: Duration::from_secs(3600),
            cc,
        },
        partial: None,
        on_disk: Default::default(),
        disk_only: false,
    })
}

/// The key of the `i`-th benchmark object.
fn ram_key(i: u64) -> CacheKey {
    CacheKey::new(
        "http",
        b"cdn.example.com",
        format!("/assets/img/{i:08x}.webp").as_bytes(),
    )
}

fn bench_ram(c: &mut Criterion) {
    type Tier = RamTier<CacheKey, Arc<StoredObject>>;
    let obj = stored_object();
    let keys: Vec<CacheKey> = (0..RAM_ENTRIES as u64).map(ram_key).collect();
    // Every key has the same length, hence the same charge and the same cost in the tier.
    let charge = obj.charge(keys[0].heap_bytes());
    let cost = charge + Tier::ENTRY_OVERHEAD;

    let mut g = c.benchmark_group("ram");

    // Lookups that hit: a budget with room to spare, random keys among 100k live entries.
    {
        let mut tier = Tier::new(cost * RAM_ENTRIES as u64 * 2);
        for k in &keys {
            tier.insert(k.clone(), obj.clone(), charge)
                .expect("admitted");
        }
        assert_eq!(tier.len(), RAM_ENTRIES);
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let order: Vec<usize> = (0..1 << 16)
            .map(|_| (rng.next() % RAM_ENTRIES as u64) as usize)
            .collect();
        let mut i = 0;
        g.bench_function("get_hit", |b| {
            b.iter(|| {
                i = (i + 1) & (order.len() - 1);
                let hit = tier.get(&keys[order[i]]).map(|o| o.body_len);
                debug_assert!(hit.is_some());
                hit
            })
        });
    }

    // Inserts of new keys into a tier that is exactly full, so each one evicts one entry. The
    // tier is first warmed through twice its capacity with every key read once, so the main queue
    // holds ~90% and the small queue ~10% of it, as in steady state. The timed inserts are
    // one-hit wonders: after the first ~10k (which push the warm-up's read keys from small to
    // main, evicting from main), each evicts the small queue's head into the ghost. Building each
    // new key is untimed; dropping the evicted entry is timed.
    {
        let mut tier = Tier::new(cost * RAM_ENTRIES as u64);
        let mut next = 0u64;
        while next < 2 * RAM_ENTRIES as u64 {
            let k = ram_key(next);
            tier.insert(k.clone(), obj.clone(), charge)
                .expect("admitted");
            tier.get(&k);
            next += 1;
        }
        assert_eq!(tier.len(), RAM_ENTRIES);
        assert_eq!(tier.insert(ram_key(next), obj.clone(), charge), Ok(1));
        next += 1;
        g.bench_function("insert_evict", |b| {
            b.iter_batched(
                || {
                    next += 1;
                    ram_key(next)
                },
                |k| tier.insert(k, obj.clone(), charge),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

// ---------------------------------------------------------------------------------------------
// Hit response head: step 4, `proxy::respond::hit` copying the stored object's pre-serialised
// head into the connection's output buffer and appending the per-response fields (framing, Age,
// Cache-Status, X-Cache, Via). Every hit pays this once.
// ---------------------------------------------------------------------------------------------

fn bench_write(c: &mut Criterion) {
    let mut h = origin_response_headers();
    h.retain(|n, _| !n.eq_ignore_ascii_case(b"server"));
    assert_eq!(h.len(), 6);
    let meta = ResponseMeta::new(200, b"OK", h, VarySpec::default());
    let body_len: u64 = 48_213;
    let age: u64 = 1_234;
    let ttl: u64 = 3_600 - age;
    let mut out: Vec<u8> = Vec::with_capacity(4096);

    let mut g = c.benchmark_group("write");
    g.bench_function("hit_head", |b| {
        b.iter(|| {
            // The connection's output buffer is reused across responses.
            out.clear();
            let mut cs = Vec::with_capacity(40);
            cs.extend_from_slice(b"verge; hit; ttl=");
            cs.extend_from_slice(itoa::Buffer::new().format(black_box(ttl)).as_bytes());
            out.extend_from_slice(black_box(&meta.head));
            number_field(&mut out, "Content-Length", black_box(body_len));
            number_field(&mut out, "Age", black_box(age));
            field(&mut out, "Cache-Status", &cs);
            field(&mut out, "X-Cache", b"Hit from verge");
            field(&mut out, "Via", VIA);
            out.extend_from_slice(b"\r\n");
            black_box(out.len())
        })
    });
    g.finish();
}

// ---------------------------------------------------------------------------------------------
// Block checksums: the CRC-32 (`crc32fast`, already a `verge-storage` dependency) that the
// planned disk tier puts on each stored block, paid per byte on every write and every read.
// ---------------------------------------------------------------------------------------------

fn bench_crc(c: &mut Criterion) {
    let block: Vec<u8> = (0..BODY_LEN).map(|i| (i * 31 % 256) as u8).collect();
    let mut g = c.benchmark_group("crc");
    g.throughput(Throughput::Bytes(block.len() as u64));
    g.bench_function("crc32_64k", |b| {
        b.iter(|| crc32fast::hash(black_box(&block)))
    });
    g.finish();
}

criterion_group!(
    benches,
    bench_parse_request,
    bench_chunked,
    bench_key,
    bench_policy,
    bench_ram,
    bench_write,
    bench_crc
);
criterion_main!(benches);
