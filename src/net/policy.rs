//! The viewer protocol policy (CloudFront's names): what a cleartext request gets when the
//! operator wants viewers on HTTPS. Chosen per Host (`server.host_policy`), else the listener-wide
//! `server.viewer_protocol_policy`. Requests that arrived over TLS are never affected.

/// One policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    AllowAll,
    /// 301 to the same host and path over https.
    RedirectToHttps,
    /// 403.
    HttpsOnly,
}

impl Policy {
    pub fn parse(s: &str) -> Result<Policy, String> {
        match s {
            "allow-all" => Ok(Policy::AllowAll),
            "redirect-to-https" => Ok(Policy::RedirectToHttps),
            "https-only" => Ok(Policy::HttpsOnly),
            other => Err(format!(
                "{other:?}: use \"allow-all\", \"redirect-to-https\" or \"https-only\""
            )),
        }
    }
}

/// The policy table, parsed once per shard.
#[derive(Clone, Debug)]
pub struct Policies {
    default: Policy,
    by_host: Vec<(Vec<u8>, Policy)>,
    /// Port of the first TLS listener (omitted from redirects when 443).
    https_port: u16,
}

impl Policies {
    pub fn from_config(cfg: &crate::config::Config) -> Policies {
        let s = &cfg.server;
        let https_port = cfg
            .tls
            .listen
            .first()
            .and_then(|a| a.parse::<std::net::SocketAddr>().ok())
            .map_or(443, |a| a.port());
        Policies {
            default: Policy::parse(&s.viewer_protocol_policy).unwrap_or(Policy::AllowAll),
            by_host: s
                .host_policy
                .iter()
                .map(|(h, p)| {
                    (
                        h.to_ascii_lowercase().into_bytes(),
                        Policy::parse(p).unwrap_or(Policy::AllowAll),
                    )
                })
                .collect(),
            https_port,
        }
    }

    /// The policy for a cleartext request to `host` (which may carry a port).
    pub fn for_host(&self, host: &[u8]) -> Policy {
        if self.by_host.is_empty() {
            return self.default;
        }
        let name = strip_port(host);
        self.by_host
            .iter()
            .find(|(h, _)| h.eq_ignore_ascii_case(name))
            .map_or(self.default, |(_, p)| *p)
    }

    /// The `Location` of a redirect to https for `host` and `target`.
    pub fn redirect_location(&self, host: &[u8], target: &[u8]) -> Vec<u8> {
        let mut loc = b"https://".to_vec();
        loc.extend_from_slice(strip_port(host));
        if self.https_port != 443 {
            loc.push(b':');
            loc.extend_from_slice(self.https_port.to_string().as_bytes());
        }
        loc.extend_from_slice(target);
        loc
    }
}

/// `host` without a trailing `:port` (IPv6 literals keep their brackets).
fn strip_port(host: &[u8]) -> &[u8] {
    match memchr::memrchr(b':', host) {
        Some(i) if !host[i..].contains(&b']') && host[i + 1..].iter().all(u8::is_ascii_digit) => {
            &host[..i]
        }
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_host_overrides_default() {
        let mut cfg = crate::config::Config::default();
        cfg.server.viewer_protocol_policy = "redirect-to-https".into();
        cfg.server
            .host_policy
            .insert("Open.Example".into(), "allow-all".into());
        cfg.tls.listen = vec!["127.0.0.1:8443".into()];
        let p = Policies::from_config(&cfg);
        assert_eq!(p.for_host(b"open.example:8080"), Policy::AllowAll);
        assert_eq!(p.for_host(b"other.example"), Policy::RedirectToHttps);
        assert_eq!(
            p.redirect_location(b"a.example:8080", b"/x?y"),
            b"https://a.example:8443/x?y".to_vec()
        );
        assert_eq!(strip_port(b"[::1]:80"), b"[::1]");
        assert_eq!(strip_port(b"[::1]"), b"[::1]");
    }
}
