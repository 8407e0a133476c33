//! The standby page's defences: CSRF tokens, the same-origin check, and the response headers every answer
//! carries (the rate limits are in `limits`).
//!
//! The page faces the internet. A POST is accepted only from a page this service served for the same host: the
//! `Origin` (or, without it, the `Referer`) must name the request's `Host`, and the form must carry the token that
//! also sits in a `SameSite=Strict` cookie, an HMAC of the host and a time window under a key that lives only in
//! this process. Nothing here reads or writes files.

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use std::time::Duration;

/// Name of the CSRF cookie and form field.
pub const CSRF_FIELD: &str = "csrf";
/// The cookie carrying the same token.
pub const CSRF_COOKIE: &str = "foundry_standby_csrf";

/// The headers on every answer: no inline script or style, no framing, no sniffing, no referrer to other sites.
pub const SECURITY_HEADERS: [(&str, &str); 7] = [
    (
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
         form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    ),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "same-origin"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    ("permissions-policy", "camera=(), microphone=(), geolocation=()"),
];

/// Why a key could not be made.
#[derive(Debug, thiserror::Error)]
#[error("the system random source failed")]
pub struct RandomUnavailable;

/// Issues and checks CSRF tokens: `<window>.<hex HMAC-SHA256(key, host|window)>`, valid in its window and the next.
pub struct CsrfKeys {
    key: hmac::Key,
    lifetime: u64,
}

impl std::fmt::Debug for CsrfKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsrfKeys").field("lifetime", &self.lifetime).finish_non_exhaustive()
    }
}

impl CsrfKeys {
    /// A fresh random key; tokens live between `lifetime` and twice that.
    pub fn new(lifetime: Duration) -> Result<Self, RandomUnavailable> {
        let mut bytes = [0u8; 32];
        SystemRandom::new().fill(&mut bytes).map_err(|_| RandomUnavailable)?;
        Ok(Self { key: hmac::Key::new(hmac::HMAC_SHA256, &bytes), lifetime: lifetime.as_secs().max(1) })
    }

    fn message(host: &str, window: u64) -> String {
        format!("standby-csrf|{host}|{window}")
    }

    /// The token for `host` at Unix time `now`.
    pub fn issue(&self, host: &str, now: u64) -> String {
        let window = now / self.lifetime;
        let tag = hmac::sign(&self.key, Self::message(host, window).as_bytes());
        format!("{window}.{}", hex(tag.as_ref()))
    }

    /// Whether `token` was issued for `host` in the current or the previous window.
    pub fn verify(&self, token: &str, host: &str, now: u64) -> bool {
        let Some((window, mac)) = token.split_once('.') else { return false };
        let Ok(window) = window.parse::<u64>() else { return false };
        let current = now / self.lifetime;
        if window != current && window.saturating_add(1) != current {
            return false;
        }
        let Some(mac) = unhex(mac) else { return false };
        hmac::verify(&self.key, Self::message(host, window).as_bytes(), &mac).is_ok()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() != 64 {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| text.get(i..i + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok())).collect()
}

/// Whether `origin` (an `Origin` header, or a `Referer` URL) names the `host` the request was sent to.
pub fn same_origin(origin: &str, host: &str) -> bool {
    let rest = match origin.split_once("://") {
        Some(("http" | "https", rest)) => rest,
        _ => return false,
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    !host.is_empty() && authority.eq_ignore_ascii_case(host)
}

/// Reads one cookie from a `Cookie` header.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').filter_map(|kv| kv.trim().split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v)
}

/// Reads one field of an `application/x-www-form-urlencoded` body (the token alphabet needs no decoding).
pub fn form_field<'a>(body: &'a str, name: &str) -> Option<&'a str> {
    body.split('&').filter_map(|kv| kv.split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_bind_host_and_window() {
        let keys = CsrfKeys::new(Duration::from_secs(100)).unwrap();
        let token = keys.issue("beta.example.com", 1_000);
        assert!(keys.verify(&token, "beta.example.com", 1_050));
        assert!(keys.verify(&token, "beta.example.com", 1_150), "the next window still accepts it");
        assert!(!keys.verify(&token, "beta.example.com", 1_250), "two windows later it is stale");
        assert!(!keys.verify(&token, "alpha.example.com", 1_050), "another host");
        let other = CsrfKeys::new(Duration::from_secs(100)).unwrap();
        assert!(!other.verify(&token, "beta.example.com", 1_050), "another process's key");
        assert!(!keys.verify("10.abc", "beta.example.com", 1_050));
        assert!(!keys.verify("", "beta.example.com", 1_050));
    }

    #[test]
    fn origin_must_name_the_host() {
        assert!(same_origin("https://beta.example.com", "beta.example.com"));
        assert!(same_origin("http://beta.example.com:8080/x?y", "beta.example.com:8080"));
        assert!(!same_origin("https://evil.example", "beta.example.com"));
        assert!(!same_origin("https://beta.example.com.evil.example", "beta.example.com"));
        assert!(!same_origin("null", "beta.example.com"));
        assert!(!same_origin("ftp://beta.example.com", "beta.example.com"));
    }
}
