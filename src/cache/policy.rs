//! RFC 9111 caching policy for a *shared* cache: what may be stored (§3), for how long it is fresh
//! (§4.2.1, §4.2.2), its age (§4.2.3), whether a stored response may be reused for a request without
//! contacting the origin (§4.2, §5.2.1), and which header fields must not be stored (§3.1, §5.2.2).
//!
//! Everything here is a pure function of header values and caller-supplied instants: no I/O, no clock
//! reads, no global state. Invariants:
//! - No header input can make any function panic; all time arithmetic saturates (a negative
//!   difference becomes zero, sums clamp instead of overflowing).
//! - Malformed freshness information always errs towards *stale* (lifetime zero), never towards fresh.
//! - Dates are parsed with `httpdate::parse_http_date` (IMF-fixdate, RFC 850 and asctime forms).
//! - `stale-while-revalidate` / `stale-if-error` are parsed (see `CacheControl`) but not acted on here;
//!   serving stale content under them is the caller's decision.

use std::time::{Duration, SystemTime};

use crate::cache::cache_control::{parse_delta, CacheControl, DELTA_SECONDS_MAX};
use crate::http::headers::{trim_ows, Headers};

/// Tunables for freshness computation.
#[derive(Clone, Debug)]
pub struct PolicyConfig {
    /// Fraction of `Date - Last-Modified` used as a heuristic lifetime (RFC 9111 §4.2.2). Default 0.1.
    pub heuristic_fraction: f64,
    /// Upper bound of a heuristic lifetime. Default 1 day.
    pub heuristic_max: Duration,
    /// Lifetime for responses that are cacheable by default (heuristically cacheable status, or
    /// `public`) but carry neither explicit freshness nor a `Last-Modified` to base a heuristic on.
    /// Default `None`: such responses get lifetime zero.
    pub default_ttl: Option<Duration>,
    /// Lower clamp for valid explicit lifetimes (s-maxage / max-age / Expires). Default 0.
    pub min_ttl: Duration,
    /// Upper clamp for valid explicit lifetimes. Default 1 year (365 days).
    pub max_ttl: Duration,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            heuristic_fraction: 0.1,
            heuristic_max: Duration::from_secs(24 * 3600),
            default_ttl: None,
            min_ttl: Duration::ZERO,
            max_ttl: Duration::from_secs(365 * 24 * 3600),
        }
    }
}

/// Why a response is not stored. `as_str()` gives a short token for the Cache-Status `detail=` parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoStore {
    /// The request method is not GET.
    Method,
    /// Non-final (1xx), 304, 206, or out-of-range status.
    Status,
    /// Response `Cache-Control: no-store` (without an honoured `must-understand`).
    NoStoreDirective,
    /// Unqualified response `Cache-Control: private`.
    Private,
    /// The request carried `Authorization` and the response did not allow sharing (§3.5).
    Authorization,
    /// Neither explicit freshness nor a heuristically cacheable status / `public`.
    NoFreshness,
    /// `must-understand` on a status code we do not implement.
    MustUnderstandUnknownStatus,
    /// `Vary: *` can never match a later request (§4.1).
    VaryStar,
    /// Request `Cache-Control: no-store`.
    RequestNoStore,
}

impl NoStore {
    pub fn as_str(&self) -> &'static str {
        match self {
            NoStore::Method => "method",
            NoStore::Status => "status",
            NoStore::NoStoreDirective => "no-store",
            NoStore::Private => "private",
            NoStore::Authorization => "authorization",
            NoStore::NoFreshness => "no-freshness",
            NoStore::MustUnderstandUnknownStatus => "must-understand",
            NoStore::VaryStar => "vary-star",
            NoStore::RequestNoStore => "request-no-store",
        }
    }
}

/// Status codes that are heuristically cacheable (RFC 9110 §15.1), minus 206: we store only complete
/// responses.
fn heuristically_cacheable(status: u16) -> bool {
    matches!(
        status,
        200 | 203 | 204 | 300 | 301 | 308 | 404 | 405 | 410 | 414 | 501
    )
}

/// Final status codes whose semantics this cache implements, for `must-understand` (RFC 9111 §5.2.2.3):
/// the final codes defined by RFC 9110 except 206 (no partial storage) and 304 (never stored as such).
fn understood_status(status: u16) -> bool {
    matches!(
        status,
        200..=205 | 300..=305 | 307 | 308 | 400..=417 | 421 | 422 | 426 | 500..=505
    )
}

/// Whether the message has explicit freshness information for a shared cache: `s-maxage`, `max-age`
/// (even malformed: it then means "stale") or `Expires` (even invalid: it then means "expired").
fn has_explicit_freshness(cc: &CacheControl, resp_headers: &Headers) -> bool {
    cc.s_maxage.is_some()
        || cc.max_age.is_some()
        || cc.invalid_max_age
        || resp_headers.contains("expires")
}

/// RFC 9111 §3 for a SHARED cache: may this response to this request be stored?
///
/// Checks, in order: method (GET only), request `no-store`, status (final, not 206/304),
/// `must-understand` (known status: overrides `no-store`; unknown status: refused), `no-store`,
/// unqualified `private` (a qualified `private="x"` is storable once `x` is stripped, see
/// [`fields_not_to_store`]), `Authorization` (§3.5: needs `must-revalidate`, `public` or `s-maxage`),
/// `Vary: *`, and finally freshness: explicit (`s-maxage`, `max-age`, `Expires`) or a heuristically
/// cacheable status or `public`. An unqualified `no-cache` response is storable (it is revalidated on
/// every use).
pub fn storable(
    req_method: &[u8],
    req_headers: &Headers,
    status: u16,
    resp_headers: &Headers,
) -> Result<(), NoStore> {
    if req_method != b"GET" {
        return Err(NoStore::Method);
    }
    if request_forbids_store(req_headers) {
        return Err(NoStore::RequestNoStore);
    }
    if !(200..=599).contains(&status) || status == 206 || status == 304 {
        return Err(NoStore::Status);
    }
    let cc = CacheControl::parse(resp_headers);
    if cc.must_understand {
        if !understood_status(status) {
            return Err(NoStore::MustUnderstandUnknownStatus);
        }
        // Understood status: no-store is ignored (§5.2.2.3).
    } else if cc.no_store {
        return Err(NoStore::NoStoreDirective);
    }
    if cc.private {
        return Err(NoStore::Private);
    }
    if req_headers.contains("authorization")
        && !(cc.must_revalidate || cc.public || cc.s_maxage.is_some())
    {
        return Err(NoStore::Authorization);
    }
    if resp_headers.list("vary").any(|v| v == b"*") {
        return Err(NoStore::VaryStar);
    }
    if !(has_explicit_freshness(&cc, resp_headers) || heuristically_cacheable(status) || cc.public)
    {
        return Err(NoStore::NoFreshness);
    }
    Ok(())
}

/// Parses an HTTP-date header value; `None` when absent or invalid.
fn header_date(headers: &Headers, name: &str) -> Option<SystemTime> {
    let v = headers.get(name)?;
    let s = std::str::from_utf8(trim_ows(v)).ok()?;
    httpdate::parse_http_date(s).ok()
}

/// `a - b`, or zero when `b` is later.
fn since(a: SystemTime, b: SystemTime) -> Duration {
    a.duration_since(b).unwrap_or(Duration::ZERO)
}

/// Freshness lifetime (RFC 9111 §4.2.1) for a shared cache. Returns `(lifetime, is_heuristic)`.
///
/// Precedence: `s-maxage` > `max-age` > `Expires - Date` > heuristic > `default_ttl`.
/// - A malformed or conflicting `max-age`/`s-maxage` (`invalid_max_age`) gives zero.
/// - `Expires`: `Date` missing or invalid means `response_time` is used as the date. An unparseable
///   `Expires` (e.g. `0`) or several `Expires` lines with different values give zero (already expired).
/// - Valid explicit lifetimes are clamped to `[min_ttl, max_ttl]` (if `min_ttl > max_ttl`, `max_ttl`
///   wins); the invalid cases above stay zero and are not raised by `min_ttl`.
/// - Heuristic (only for heuristically cacheable statuses or `public`, and only with a valid
///   `Last-Modified` not later than `Date`): `heuristic_fraction * (Date - Last-Modified)`, capped at
///   `heuristic_max`.
/// - Otherwise, for those same statuses, `default_ttl` if configured (reported as heuristic).
/// - Otherwise zero (not heuristic).
pub fn freshness_lifetime(
    status: u16,
    resp_headers: &Headers,
    response_time: SystemTime,
    cfg: &PolicyConfig,
) -> (Duration, bool) {
    let cc = CacheControl::parse(resp_headers);
    let clamp = |d: Duration| d.max(cfg.min_ttl).min(cfg.max_ttl);
    if cc.invalid_max_age {
        return (Duration::ZERO, false);
    }
    if let Some(s) = cc.s_maxage.or(cc.max_age) {
        return (clamp(Duration::from_secs(s)), false);
    }
    let date = header_date(resp_headers, "date").unwrap_or(response_time);
    if resp_headers.contains("expires") {
        let mut values = resp_headers.get_all("expires").map(trim_ows);
        let first = values.next().unwrap_or_default();
        if values.any(|v| v != first) {
            return (Duration::ZERO, false);
        }
        return match header_date(resp_headers, "expires") {
            Some(expires) => (clamp(since(expires, date)), false),
            None => (Duration::ZERO, false),
        };
    }
    if !(heuristically_cacheable(status) || cc.public) {
        return (Duration::ZERO, false);
    }
    if let Some(lm) = header_date(resp_headers, "last-modified") {
        if lm <= date {
            let secs = since(date, lm).as_secs_f64() * cfg.heuristic_fraction;
            let h = if secs.is_finite() && secs > 0.0 {
                Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX)
            } else {
                Duration::ZERO
            };
            return (h.min(cfg.heuristic_max), true);
        }
    }
    match cfg.default_ttl {
        Some(ttl) => (ttl, true),
        None => (Duration::ZERO, false),
    }
}

/// RFC 9111 §4.2.3 `corrected_initial_age`, computed when the response arrives.
///
/// `apparent_age = max(0, response_time - date_value)` (zero without a valid `Date`);
/// `corrected_age_value = age_value + (response_time - request_time)`;
/// result `max(apparent_age, corrected_age_value)`. `age_value` is the `Age` field when it is one
/// valid delta-seconds (saturating at 2^31), 0 when absent, and 2^31 (stale) when malformed.
pub fn corrected_initial_age(
    resp_headers: &Headers,
    request_time: SystemTime,
    response_time: SystemTime,
) -> Duration {
    let apparent_age = header_date(resp_headers, "date")
        .map(|d| since(response_time, d))
        .unwrap_or(Duration::ZERO);
    // An `Age` that is not exactly one valid delta-seconds (a list, several lines, a sign, a fraction,
    // a parameter) cannot be trusted: the response is treated as already stale, as the public
    // cache-tests suite expects (age-parse-*).
    let age_value = match resp_headers.count("age") {
        0 => 0,
        1 => resp_headers
            .get("age")
            .and_then(|v| parse_delta(trim_ows(v)))
            .unwrap_or(DELTA_SECONDS_MAX),
        _ => DELTA_SECONDS_MAX,
    };
    let response_delay = since(response_time, request_time);
    let corrected_age_value = Duration::from_secs(age_value).saturating_add(response_delay);
    apparent_age.max(corrected_age_value)
}

/// `current_age = corrected_initial_age + (now - response_time)`, saturating (a `now` before
/// `response_time` adds nothing).
pub fn current_age(
    corrected_initial_age: Duration,
    response_time: SystemTime,
    now: SystemTime,
) -> Duration {
    corrected_initial_age.saturating_add(since(now, response_time))
}

/// True when the request forbids answering it from cache without contacting the origin: request
/// `Cache-Control: no-cache` or `max-age=0`, or `Pragma: no-cache` when there is no `Cache-Control`
/// field at all (RFC 9111 §5.4). A malformed request `max-age` is ignored.
pub fn request_requires_validation(req_headers: &Headers) -> bool {
    if !req_headers.contains("cache-control") {
        return req_headers.has_token("pragma", "no-cache");
    }
    let cc = CacheControl::parse(req_headers);
    cc.no_cache || cc.max_age == Some(0)
}

/// True when the request's `Cache-Control: no-store` means its response must not be stored.
pub fn request_forbids_store(req_headers: &Headers) -> bool {
    req_headers.contains("cache-control") && CacheControl::parse(req_headers).no_store
}

/// Whether a stored response with current age `age` and freshness lifetime `lifetime` may be served
/// to this request without validation.
///
/// - Never for an unqualified response `no-cache`, nor when [`request_requires_validation`].
/// - Request `max-age=N` requires `age <= N`; `min-fresh=N` requires `age + N <= lifetime` (this also
///   rules out stale serving, the most restrictive reading of a `min-fresh` + `max-stale` mix).
/// - Fresh means `age < lifetime`.
/// - A stale response may be served only under request `max-stale` (unbounded, or
///   `age - lifetime <= N`), and only when the response has none of `must-revalidate`,
///   `proxy-revalidate`, `s-maxage` (which a shared cache treats as `proxy-revalidate`, §5.2.2.10).
pub fn reusable_without_validation(
    req_headers: &Headers,
    resp_cc: &CacheControl,
    age: Duration,
    lifetime: Duration,
) -> bool {
    if resp_cc.no_cache || request_requires_validation(req_headers) {
        return false;
    }
    let req = CacheControl::parse(req_headers);
    if let Some(max_age) = req.max_age {
        if age > Duration::from_secs(max_age) {
            return false;
        }
    }
    if let Some(min_fresh) = req.min_fresh {
        if age.saturating_add(Duration::from_secs(min_fresh)) > lifetime {
            return false;
        }
    }
    if age < lifetime {
        return true;
    }
    if resp_cc.must_revalidate || resp_cc.proxy_revalidate || resp_cc.s_maxage.is_some() {
        return false;
    }
    let staleness = age - lifetime;
    match req.max_stale {
        Some(None) => true,
        Some(Some(n)) => staleness <= Duration::from_secs(n),
        None => false,
    }
}

/// Hop-by-hop fields that are never stored (RFC 9111 §3.1, RFC 9110 §7.6.1).
use crate::http::hop::HOP_BY_HOP;

/// Lowercased names of the response fields a cache must not store (RFC 9111 §3.1): the hop-by-hop
/// set, every field named in `Connection`, and the fields named by qualified `no-cache` / `private`.
/// No duplicates; `Connection` elements that are not valid tokens are skipped.
pub fn fields_not_to_store(resp_headers: &Headers, cc: &CacheControl) -> Vec<String> {
    let mut out: Vec<String> = HOP_BY_HOP.iter().map(|s| s.to_string()).collect();
    let mut add = |name: String| {
        if !out.contains(&name) {
            out.push(name);
        }
    };
    for el in resp_headers.list("connection") {
        if el.iter().copied().all(crate::http::framing::is_tchar) {
            add(String::from_utf8_lossy(el).to_ascii_lowercase());
        }
    }
    for f in cc.no_cache_fields.iter().chain(&cc.private_fields) {
        add(f.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 24 * 3600;

    fn h(fields: &[(&str, &str)]) -> Headers {
        let mut h = Headers::new();
        for (n, v) in fields {
            h.push(n.to_string(), v.to_string());
        }
        h
    }

    fn t(secs: u64) -> SystemTime {
        // A fixed, whole-second epoch offset so HTTP-date formatting round-trips.
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    fn date(secs: u64) -> String {
        httpdate::fmt_http_date(t(secs))
    }

    fn store(status: u16, resp: &[(&str, &str)]) -> Result<(), NoStore> {
        storable(b"GET", &Headers::new(), status, &h(resp))
    }

    fn life(status: u16, resp: &[(&str, &str)], response_time: SystemTime) -> (Duration, bool) {
        freshness_lifetime(status, &h(resp), response_time, &PolicyConfig::default())
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    // ---- storable: one test per NoStore variant, plus the positive cases ----

    #[test]
    fn no_store_tokens() {
        assert_eq!(NoStore::Method.as_str(), "method");
        assert_eq!(NoStore::VaryStar.as_str(), "vary-star");
        assert_eq!(
            NoStore::MustUnderstandUnknownStatus.as_str(),
            "must-understand"
        );
    }

    #[test]
    fn method_only_get() {
        let resp = h(&[("Cache-Control", "max-age=60")]);
        assert_eq!(storable(b"GET", &Headers::new(), 200, &resp), Ok(()));
        for m in [&b"HEAD"[..], b"POST", b"get", b"PUT"] {
            assert_eq!(
                storable(m, &Headers::new(), 200, &resp),
                Err(NoStore::Method)
            );
        }
    }

    #[test]
    fn request_no_store() {
        let req = h(&[("Cache-Control", "no-store")]);
        let resp = h(&[("Cache-Control", "max-age=60")]);
        assert_eq!(
            storable(b"GET", &req, 200, &resp),
            Err(NoStore::RequestNoStore)
        );
        assert!(request_forbids_store(&req));
        assert!(!request_forbids_store(&h(&[("Pragma", "no-cache")])));
    }

    #[test]
    fn status_rules() {
        for s in [100, 101, 199, 206, 304, 0, 600, 999] {
            assert_eq!(
                store(s, &[("Cache-Control", "max-age=60")]),
                Err(NoStore::Status),
                "{s}"
            );
        }
        for s in [200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501] {
            assert_eq!(store(s, &[]), Ok(()), "{s}");
        }
        // Not heuristically cacheable: needs explicit freshness or public.
        for s in [201, 302, 307, 400, 403, 500, 503, 299] {
            assert_eq!(store(s, &[]), Err(NoStore::NoFreshness), "{s}");
            assert_eq!(store(s, &[("Cache-Control", "max-age=5")]), Ok(()));
            assert_eq!(store(s, &[("Cache-Control", "s-maxage=5")]), Ok(()));
            assert_eq!(store(s, &[("Expires", &date(5))]), Ok(()));
            assert_eq!(store(s, &[("Cache-Control", "public")]), Ok(()));
        }
        // Invalid freshness info still counts as explicit (stale, revalidatable).
        assert_eq!(store(500, &[("Expires", "0")]), Ok(()));
        assert_eq!(store(500, &[("Cache-Control", "max-age=x")]), Ok(()));
    }

    #[test]
    fn no_store_directive() {
        assert_eq!(
            store(200, &[("Cache-Control", "max-age=60, No-Store")]),
            Err(NoStore::NoStoreDirective)
        );
        assert_eq!(
            store(
                200,
                &[
                    ("Cache-Control", "max-age=60"),
                    ("cache-control", "no-store")
                ]
            ),
            Err(NoStore::NoStoreDirective)
        );
    }

    #[test]
    fn private_unqualified_vs_qualified() {
        assert_eq!(
            store(200, &[("Cache-Control", "private, max-age=60")]),
            Err(NoStore::Private)
        );
        assert_eq!(
            store(
                200,
                &[("Cache-Control", "private=\"set-cookie\", max-age=60")]
            ),
            Ok(())
        );
    }

    #[test]
    fn no_cache_is_storable() {
        assert_eq!(store(200, &[("Cache-Control", "no-cache")]), Ok(()));
        assert_eq!(
            store(200, &[("Cache-Control", "no-cache, max-age=100")]),
            Ok(())
        );
    }

    #[test]
    fn authorization_rules() {
        let req = h(&[("Authorization", "Bearer x")]);
        let s = |cc: &str| storable(b"GET", &req, 200, &h(&[("Cache-Control", cc)]));
        assert_eq!(s("max-age=60"), Err(NoStore::Authorization));
        assert_eq!(s("no-cache"), Err(NoStore::Authorization));
        assert_eq!(s("max-age=60, public"), Ok(()));
        assert_eq!(s("max-age=60, must-revalidate"), Ok(()));
        assert_eq!(s("s-maxage=60"), Ok(()));
        // A malformed s-maxage does not authorise sharing.
        assert_eq!(s("s-maxage=x"), Err(NoStore::Authorization));
        // No Authorization: plain max-age is fine.
        assert_eq!(store(200, &[("Cache-Control", "max-age=60")]), Ok(()));
    }

    #[test]
    fn must_understand() {
        // Understood status: no-store is overridden.
        assert_eq!(
            store(
                200,
                &[("Cache-Control", "must-understand, no-store, max-age=60")]
            ),
            Ok(())
        );
        // Unknown status: refused even with explicit freshness.
        assert_eq!(
            store(
                299,
                &[("Cache-Control", "must-understand, no-store, max-age=60")]
            ),
            Err(NoStore::MustUnderstandUnknownStatus)
        );
        assert_eq!(
            store(299, &[("Cache-Control", "must-understand, max-age=60")]),
            Err(NoStore::MustUnderstandUnknownStatus)
        );
        // Understood but still needs freshness / must respect private.
        assert_eq!(
            store(
                200,
                &[("Cache-Control", "must-understand, no-store, private")]
            ),
            Err(NoStore::Private)
        );
        // Without must-understand, 299 with max-age is storable.
        assert_eq!(store(299, &[("Cache-Control", "max-age=60")]), Ok(()));
    }

    #[test]
    fn vary_star() {
        assert_eq!(
            store(
                200,
                &[("Cache-Control", "max-age=60"), ("Vary", "Accept, *")]
            ),
            Err(NoStore::VaryStar)
        );
        assert_eq!(
            store(
                200,
                &[("Cache-Control", "max-age=60"), ("Vary", "Accept-Encoding")]
            ),
            Ok(())
        );
    }

    #[test]
    fn no_freshness() {
        assert_eq!(
            store(500, &[("Last-Modified", &date(0))]),
            Err(NoStore::NoFreshness)
        );
        assert_eq!(
            store(302, &[("Cache-Control", "no-cache")]),
            Err(NoStore::NoFreshness)
        );
    }

    // ---- freshness_lifetime ----

    #[test]
    fn precedence_s_maxage_max_age_expires() {
        let rt = t(0);
        let d = date(0);
        let e = date(1000);
        assert_eq!(
            life(
                200,
                &[
                    ("Cache-Control", "max-age=100, s-maxage=200"),
                    ("Date", &d),
                    ("Expires", &e)
                ],
                rt
            ),
            (secs(200), false)
        );
        assert_eq!(
            life(
                200,
                &[
                    ("Cache-Control", "max-age=100"),
                    ("Date", &d),
                    ("Expires", &e)
                ],
                rt
            ),
            (secs(100), false)
        );
        assert_eq!(
            life(200, &[("Date", &d), ("Expires", &e)], rt),
            (secs(1000), false)
        );
        // max-age=0 is explicit zero, Expires ignored.
        assert_eq!(
            life(200, &[("Cache-Control", "max-age=0"), ("Expires", &e)], rt),
            (secs(0), false)
        );
    }

    #[test]
    fn expires_past_invalid_zero() {
        let rt = t(1000);
        assert_eq!(
            life(200, &[("Date", &date(1000)), ("Expires", &date(10))], rt),
            (secs(0), false)
        );
        for bad in ["0", "-1", "tomorrow", ""] {
            assert_eq!(
                life(
                    200,
                    &[
                        ("Date", &date(1000)),
                        ("Expires", bad),
                        ("Last-Modified", &date(0))
                    ],
                    rt
                ),
                (secs(0), false),
                "{bad:?}"
            );
        }
        // Conflicting duplicate Expires: treated as expired.
        assert_eq!(
            life(
                200,
                &[("Expires", &date(2000)), ("Expires", &date(5000))],
                rt
            ),
            (secs(0), false)
        );
        // Identical duplicates are fine.
        assert_eq!(
            life(
                200,
                &[("Expires", &date(2000)), ("Expires", &date(2000))],
                rt
            ),
            (secs(1000), false)
        );
    }

    #[test]
    fn expires_minus_date_with_skewed_clock() {
        // Origin clock is 1 hour behind ours: Date=t(0), Expires=t(600), we received at t(3600).
        // Lifetime is Expires - Date = 600s regardless of the skew.
        let rt = t(3600);
        assert_eq!(
            life(200, &[("Date", &date(0)), ("Expires", &date(600))], rt),
            (secs(600), false)
        );
        // Origin clock ahead of ours.
        let rt = t(0);
        assert_eq!(
            life(200, &[("Date", &date(5000)), ("Expires", &date(5600))], rt),
            (secs(600), false)
        );
        // No Date: response_time stands in for it.
        assert_eq!(
            life(200, &[("Expires", &date(600))], t(100)),
            (secs(500), false)
        );
        // Invalid Date: same.
        assert_eq!(
            life(200, &[("Date", "garbage"), ("Expires", &date(600))], t(100)),
            (secs(500), false)
        );
        // Other date formats are accepted.
        assert_eq!(
            life(
                200,
                &[
                    ("Date", "Sunday, 06-Nov-94 08:49:37 GMT"),
                    ("Expires", "Sun Nov  6 08:59:37 1994")
                ],
                t(0)
            ),
            (secs(600), false)
        );
    }

    #[test]
    fn invalid_max_age_is_stale() {
        for cc in [
            "max-age=abc",
            "max-age=-1",
            "max-age= 5",
            "max-age=1, max-age=3600",
            "s-maxage=x, max-age=60",
        ] {
            assert_eq!(
                life(
                    200,
                    &[("Cache-Control", cc), ("Last-Modified", &date(0))],
                    t(DAY)
                ),
                (secs(0), false),
                "{cc}"
            );
        }
        // Quoted delta-seconds are valid.
        assert_eq!(
            life(200, &[("Cache-Control", "max-age=\"60\"")], t(0)),
            (secs(60), false)
        );
    }

    #[test]
    fn heuristic_freshness() {
        // 10% of (Date - Last-Modified) = 10% of 10000s.
        let resp = [("Date", date(10_000)), ("Last-Modified", date(0))];
        let resp: Vec<(&str, &str)> = resp.iter().map(|(n, v)| (*n, v.as_str())).collect();
        assert_eq!(life(200, &resp, t(10_000)), (secs(1000), true));
        assert_eq!(life(404, &resp, t(10_000)), (secs(1000), true));
        // Not heuristically cacheable: no heuristic.
        assert_eq!(life(500, &resp, t(10_000)), (secs(0), false));
        assert_eq!(life(302, &resp, t(10_000)), (secs(0), false));
        // ... unless public.
        let mut pubr = resp.clone();
        pubr.push(("Cache-Control", "public"));
        assert_eq!(life(500, &pubr, t(10_000)), (secs(1000), true));
        // Capped at heuristic_max (1 day): LM 100 days ago.
        let lm = date(0);
        let d = date(100 * DAY);
        assert_eq!(
            life(200, &[("Date", &d), ("Last-Modified", &lm)], t(100 * DAY)),
            (secs(DAY), true)
        );
        // Date missing: response_time is used.
        assert_eq!(
            life(200, &[("Last-Modified", &lm)], t(5000)),
            (secs(500), true)
        );
        // Last-Modified after Date, or invalid: no basis.
        assert_eq!(
            life(
                200,
                &[("Date", &date(0)), ("Last-Modified", &date(50))],
                t(0)
            ),
            (secs(0), false)
        );
        assert_eq!(
            life(200, &[("Last-Modified", "yesterday")], t(0)),
            (secs(0), false)
        );
        // A custom fraction; silly fractions never panic.
        let cfg = PolicyConfig {
            heuristic_fraction: 0.5,
            ..Default::default()
        };
        assert_eq!(
            freshness_lifetime(200, &h(&resp), t(10_000), &cfg),
            (secs(5000), true)
        );
        for f in [f64::NAN, -1.0, f64::INFINITY, 1e300] {
            let cfg = PolicyConfig {
                heuristic_fraction: f,
                ..Default::default()
            };
            let (l, _) = freshness_lifetime(200, &h(&resp), t(10_000), &cfg);
            assert!(l <= cfg.heuristic_max);
        }
    }

    #[test]
    fn default_ttl_and_clamps() {
        let cfg = PolicyConfig {
            default_ttl: Some(secs(300)),
            min_ttl: secs(10),
            max_ttl: secs(3600),
            ..Default::default()
        };
        // No freshness info, cacheable status: default_ttl.
        assert_eq!(
            freshness_lifetime(200, &Headers::new(), t(0), &cfg),
            (secs(300), true)
        );
        // Not cacheable by default: nothing.
        assert_eq!(
            freshness_lifetime(500, &Headers::new(), t(0), &cfg),
            (secs(0), false)
        );
        // Heuristic basis wins over default_ttl.
        let lm = h(&[("Last-Modified", &date(0))]);
        assert_eq!(
            freshness_lifetime(200, &lm, t(1000), &cfg),
            (secs(100), true)
        );
        // Explicit lifetimes are clamped.
        let cc = |v: &str| h(&[("Cache-Control", v)]);
        assert_eq!(
            freshness_lifetime(200, &cc("max-age=1"), t(0), &cfg),
            (secs(10), false)
        );
        assert_eq!(
            freshness_lifetime(200, &cc("max-age=0"), t(0), &cfg),
            (secs(10), false)
        );
        assert_eq!(
            freshness_lifetime(200, &cc("max-age=99999"), t(0), &cfg),
            (secs(3600), false)
        );
        // Invalid explicit freshness stays zero.
        assert_eq!(
            freshness_lifetime(200, &cc("max-age=x"), t(0), &cfg),
            (secs(0), false)
        );
        assert_eq!(
            freshness_lifetime(200, &h(&[("Expires", "0")]), t(0), &cfg),
            (secs(0), false)
        );
        // Default max_ttl is one year.
        assert_eq!(
            life(200, &[("Cache-Control", "max-age=999999999")], t(0)),
            (secs(365 * DAY), false)
        );
        // min_ttl > max_ttl never panics; max wins.
        let odd = PolicyConfig {
            min_ttl: secs(100),
            max_ttl: secs(10),
            ..Default::default()
        };
        assert_eq!(
            freshness_lifetime(200, &cc("max-age=50"), t(0), &odd),
            (secs(10), false)
        );
    }

    // ---- Age ----

    #[test]
    fn age_arithmetic() {
        // Fresh from origin: Date == response_time, no Age, 2s delay.
        let r = h(&[("Date", &date(100))]);
        assert_eq!(corrected_initial_age(&r, t(98), t(100)), secs(2));
        // Age header present: age_value + response_delay.
        let r = h(&[("Date", &date(100)), ("Age", "60")]);
        assert_eq!(corrected_initial_age(&r, t(99), t(100)), secs(61));
        // Date in the past (apparent age dominates).
        let r = h(&[("Date", &date(0)), ("Age", "10")]);
        assert_eq!(corrected_initial_age(&r, t(499), t(500)), secs(500));
        // Date in the future (origin clock ahead): apparent age 0.
        let r = h(&[("Date", &date(1000))]);
        assert_eq!(corrected_initial_age(&r, t(499), t(500)), secs(1));
        // Missing / invalid Date.
        assert_eq!(corrected_initial_age(&Headers::new(), t(7), t(10)), secs(3));
        let r = h(&[("Date", "nope"), ("Age", "5")]);
        assert_eq!(corrected_initial_age(&r, t(10), t(10)), secs(5));
        // response_time before request_time never panics.
        assert_eq!(corrected_initial_age(&Headers::new(), t(10), t(5)), secs(0));
    }

    #[test]
    fn age_header_parsing() {
        let age = |v: &[&str]| {
            let mut r = Headers::new();
            for x in v {
                r.push("Age", x.to_string());
            }
            corrected_initial_age(&r, t(0), t(0))
        };
        assert_eq!(age(&[" 30 "]), secs(30));
        // Malformed or repeated Age: treated as stale (2^31 s).
        assert_eq!(age(&["30", "9999"]), secs(1 << 31));
        assert_eq!(age(&["0", "0"]), secs(1 << 31));
        for bad in [
            "abc", "-7200", "7200.0", "7200,0", "", "0x10", "0, 0", "1;a=b",
        ] {
            assert_eq!(age(&[bad]), secs(1 << 31), "{bad:?}");
        }
        assert_eq!(age(&[]), secs(0));
        assert_eq!(age(&["99999999999999999999999"]), secs(1 << 31));
    }

    #[test]
    fn current_age_adds_resident_time() {
        assert_eq!(current_age(secs(5), t(100), t(160)), secs(65));
        assert_eq!(current_age(secs(5), t(100), t(50)), secs(5));
        assert_eq!(current_age(Duration::MAX, t(0), t(10)), Duration::MAX);
    }

    // ---- request directives and reuse ----

    #[test]
    fn request_validation_triggers() {
        assert!(request_requires_validation(&h(&[(
            "Cache-Control",
            "no-cache"
        )])));
        assert!(request_requires_validation(&h(&[(
            "Cache-Control",
            "max-age=0"
        )])));
        assert!(request_requires_validation(&h(&[("Pragma", "no-cache")])));
        // Pragma is ignored when Cache-Control is present.
        assert!(!request_requires_validation(&h(&[
            ("Pragma", "no-cache"),
            ("Cache-Control", "max-age=60")
        ])));
        assert!(!request_requires_validation(&h(&[(
            "Cache-Control",
            "max-age=1"
        )])));
        assert!(!request_requires_validation(&h(&[(
            "Cache-Control",
            "no-store"
        )])));
        assert!(!request_requires_validation(&Headers::new()));
    }

    fn reuse(req: &[(&str, &str)], resp_cc: &str, age: u64, lifetime: u64) -> bool {
        let rcc = CacheControl::parse(&h(&[("Cache-Control", resp_cc)]));
        reusable_without_validation(&h(req), &rcc, secs(age), secs(lifetime))
    }

    #[test]
    fn reuse_fresh_and_stale() {
        assert!(reuse(&[], "max-age=100", 10, 100));
        assert!(reuse(&[], "max-age=100", 99, 100));
        assert!(!reuse(&[], "max-age=100", 100, 100));
        assert!(!reuse(&[], "max-age=100", 150, 100));
    }

    #[test]
    fn reuse_request_max_age() {
        let req = [("Cache-Control", "max-age=30")];
        assert!(reuse(&req, "max-age=100", 30, 100));
        assert!(!reuse(&req, "max-age=100", 31, 100));
        assert!(!reuse(
            &[("Cache-Control", "max-age=0")],
            "max-age=100",
            0,
            100
        ));
        assert!(!reuse(
            &[("Cache-Control", "no-cache")],
            "max-age=100",
            0,
            100
        ));
        assert!(!reuse(&[("Pragma", "no-cache")], "max-age=100", 0, 100));
    }

    #[test]
    fn reuse_min_fresh() {
        let req = [("Cache-Control", "min-fresh=20")];
        assert!(reuse(&req, "max-age=100", 80, 100));
        assert!(!reuse(&req, "max-age=100", 81, 100));
        // min-fresh plus max-stale: min-fresh (more restrictive) wins.
        let req = [("Cache-Control", "min-fresh=20, max-stale")];
        assert!(!reuse(&req, "max-age=100", 150, 100));
    }

    #[test]
    fn reuse_max_stale() {
        let any = [("Cache-Control", "max-stale")];
        let ten = [("Cache-Control", "max-stale=10")];
        assert!(reuse(&any, "max-age=100", 10_000, 100));
        assert!(reuse(&ten, "max-age=100", 110, 100));
        assert!(!reuse(&ten, "max-age=100", 111, 100));
        // max-stale with request max-age: both must hold.
        let both = [("Cache-Control", "max-stale, max-age=120")];
        assert!(reuse(&both, "max-age=100", 115, 100));
        assert!(!reuse(&both, "max-age=100", 121, 100));
        // Response directives that forbid serving stale.
        for cc in [
            "max-age=100, must-revalidate",
            "max-age=100, proxy-revalidate",
            "s-maxage=100",
        ] {
            assert!(!reuse(&any, cc, 101, 100), "{cc}");
            assert!(reuse(&any, cc, 99, 100), "{cc}: fresh is fine");
        }
    }

    #[test]
    fn reuse_response_no_cache() {
        assert!(!reuse(&[], "no-cache, max-age=100", 0, 100));
        assert!(!reuse(&[("Cache-Control", "max-stale")], "no-cache", 5, 0));
        // Qualified no-cache does not prevent reuse (the fields are stripped at store time).
        assert!(reuse(&[], "no-cache=\"set-cookie\", max-age=100", 0, 100));
    }

    // ---- fields_not_to_store ----

    #[test]
    fn fields_to_strip() {
        let resp = h(&[
            ("Connection", "X-Foo, close"),
            ("Connection", "Keep-Alive, b@d"),
            (
                "Cache-Control",
                "no-cache=\"Set-Cookie\", private=\"X-User, set-cookie\"",
            ),
        ]);
        let cc = CacheControl::parse(&resp);
        let f = fields_not_to_store(&resp, &cc);
        for name in [
            "connection",
            "keep-alive",
            "proxy-connection",
            "te",
            "transfer-encoding",
            "upgrade",
            "proxy-authenticate",
            "proxy-authorization",
            "trailer",
            "x-foo",
            "set-cookie",
            "x-user",
        ] {
            assert!(f.iter().any(|x| x == name), "{name} missing from {f:?}");
        }
        assert!(!f.iter().any(|x| x == "b@d"));
        let mut dedup = f.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), f.len());
        // Plain response: exactly the hop-by-hop set.
        assert_eq!(
            fields_not_to_store(&Headers::new(), &CacheControl::default()).len(),
            HOP_BY_HOP.len()
        );
    }
}
