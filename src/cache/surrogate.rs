//! Surrogate-Control (W3C Edge Architecture Specification 1.0): the origin's instructions to CDN
//! caches, which take precedence over Cache-Control for a surrogate such as Verge.
//!
//! Verge announces itself to the origin with `Surrogate-Capability: verge="Surrogate/1.0"`, so a
//! directive is ours when it has no `;device` target or targets `verge`. Invariants: a malformed
//! directive (e.g. `max-age =5`, `max-age= 5`) is ignored, never guessed; `no-store` wins over
//! `max-age`; the header is removed before the response goes downstream when any of its directives
//! was addressed to Verge (it was consumed here).

use super::cache_control::parse_delta;
use crate::http::headers::{trim_ows, Headers};

/// Verge's device token in Surrogate-Control targets.
pub const DEVICE: &str = "verge";
/// The `Surrogate-Capability` value Verge sends to origins.
pub const CAPABILITY: &[u8] = b"verge=\"Surrogate/1.0\"";

/// The directives addressed to Verge.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SurrogateControl {
    /// Freshness lifetime in seconds (`max-age=N`, the `+stale` extension ignored).
    pub max_age: Option<u64>,
    pub no_store: bool,
    /// Some directive was addressed to Verge.
    pub targeted: bool,
}

impl SurrogateControl {
    pub fn parse(h: &Headers) -> Self {
        let mut sc = SurrogateControl::default();
        for element in h.list("surrogate-control") {
            let (directive, target) = match element.iter().position(|&b| b == b';') {
                Some(p) => (&element[..p], Some(trim_ows(&element[p + 1..]))),
                None => (element, None),
            };
            if let Some(t) = target {
                if !t.eq_ignore_ascii_case(DEVICE.as_bytes()) {
                    continue;
                }
            }
            let (name, value) = match directive.iter().position(|&b| b == b'=') {
                Some(p) => (&directive[..p], Some(&directive[p + 1..])),
                None => (directive, None),
            };
            if name.eq_ignore_ascii_case(b"no-store") && value.is_none() {
                sc.no_store = true;
                sc.targeted = true;
            } else if name.eq_ignore_ascii_case(b"max-age") {
                // `max-age=N` or `max-age=N+M`; spaces around '=' make it invalid.
                let Some(v) = value else { continue };
                let secs = v.split(|&b| b == b'+').next().unwrap_or(v);
                if let Some(n) = parse_delta(secs) {
                    sc.max_age = Some(sc.max_age.map_or(n, |m| m.min(n)));
                    sc.targeted = true;
                }
            }
        }
        sc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sc(v: &str) -> SurrogateControl {
        let mut h = Headers::new();
        h.push("Surrogate-Control", v.to_string());
        SurrogateControl::parse(&h)
    }

    #[test]
    fn targets_and_syntax() {
        assert_eq!(sc("max-age=60").max_age, Some(60));
        assert_eq!(sc("MaX-aGe=60").max_age, Some(60));
        assert_eq!(sc("foobar, max-age=60").max_age, Some(60));
        assert_eq!(sc("max-age=60;verge").max_age, Some(60));
        assert_eq!(sc("max-age=60;other"), SurrogateControl::default());
        assert_eq!(sc("max-age =60").max_age, None);
        assert_eq!(sc("max-age= 60").max_age, None);
        assert_eq!(sc("max-age=30+60").max_age, Some(30));
        assert_eq!(sc("max-age=99999999999").max_age, Some(1 << 31));
        assert!(sc("no-store").no_store);
        assert!(!sc("no-store;other").no_store);
        assert!(!sc("content=\"ESI/1.0\"").targeted);
    }
}
