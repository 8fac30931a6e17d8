//! Sessions and CSRF tokens.
//!
//! A session cookie is `HEX(login).EXPIRES.HEX(HMAC)`: the login and its
//! expiry, signed with the store's session key. Nothing is kept server-side,
//! so any node that shares the store accepts it; the price is that a session
//! lives until it expires ([`SESSION_TTL`]) even if its token is revoked.
//!
//! CSRF: every page that carries a form also sets `convoy_csrf`, a random
//! nonce, and puts `HMAC("csrf:" + nonce)` in the form. A POST must bring
//! both, matching. A cross-site page can neither read the cookie nor compute
//! the MAC, and `SameSite=Strict` keeps the cookies off cross-site requests
//! in the first place.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderValue, header};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// Name of the session cookie.
pub(crate) const SESSION_COOKIE: &str = "convoy_session";
/// Name of the CSRF nonce cookie.
pub(crate) const CSRF_COOKIE: &str = "convoy_csrf";
/// How long a login lasts.
pub(crate) const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

type HmacSha256 = Hmac<Sha256>;

fn mac(key: &[u8], parts: &[&[u8]]) -> HmacSha256 {
    // HMAC takes keys of any length; this cannot fail.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    for part in parts {
        mac.update(part);
        mac.update(b"\0");
    }
    mac
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The value of cookie `name` in the request, if any.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A signed session cookie value for `login`.
pub(crate) fn issue(key: &[u8], login: &str) -> String {
    let login = hex::encode(login);
    let expires = (now() + SESSION_TTL.as_secs()).to_string();
    let tag = mac(key, &[b"session", login.as_bytes(), expires.as_bytes()])
        .finalize()
        .into_bytes();
    format!("{login}.{expires}.{}", hex::encode(tag))
}

/// The login of a valid, unexpired session cookie.
pub(crate) fn verify(key: &[u8], value: &str) -> Option<String> {
    let mut parts = value.split('.');
    let (login, expires, tag) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let tag = hex::decode(tag).ok()?;
    // `verify_slice` compares in constant time.
    mac(key, &[b"session", login.as_bytes(), expires.as_bytes()])
        .verify_slice(&tag)
        .ok()?;
    if expires.parse::<u64>().ok()? <= now() {
        return None;
    }
    String::from_utf8(hex::decode(login).ok()?).ok()
}

/// A fresh CSRF nonce.
pub(crate) fn new_nonce() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The form token for a nonce.
pub(crate) fn csrf_token(key: &[u8], nonce: &str) -> String {
    hex::encode(
        mac(key, &[b"csrf", nonce.as_bytes()])
            .finalize()
            .into_bytes(),
    )
}

/// Whether a posted form token matches the request's nonce cookie.
pub(crate) fn csrf_ok(key: &[u8], headers: &HeaderMap, token: &str) -> bool {
    let Some(nonce) = cookie(headers, CSRF_COOKIE) else {
        return false;
    };
    let Ok(tag) = hex::decode(token) else {
        return false;
    };
    mac(key, &[b"csrf", nonce.as_bytes()])
        .verify_slice(&tag)
        .is_ok()
}

/// A `Set-Cookie` value. Every cookie is `HttpOnly` and `SameSite=Strict`;
/// `Secure` when the registry is served over https. `max_age` zero deletes.
pub(crate) fn set_cookie(name: &str, value: &str, max_age: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let cookie =
        format!("{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}");
    // Names and values are hex and digits, always valid header bytes.
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_round_trip_and_reject_tampering() {
        let key = b"k".repeat(32);
        let value = issue(&key, "alice");
        assert_eq!(verify(&key, &value).as_deref(), Some("alice"));
        assert_eq!(verify(b"other key", &value), None);
        let forged = value.replacen(&hex::encode("alice"), &hex::encode("mallory"), 1);
        assert_eq!(verify(&key, &forged), None);
        assert_eq!(verify(&key, "garbage"), None);
        assert_eq!(verify(&key, "a.b.c.d"), None);
    }

    #[test]
    fn csrf_tokens_bind_to_their_nonce() {
        let key = b"k".repeat(32);
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("x=1; convoy_csrf=abc"),
        );
        assert!(csrf_ok(&key, &headers, &csrf_token(&key, "abc")));
        assert!(!csrf_ok(&key, &headers, &csrf_token(&key, "abd")));
        assert!(!csrf_ok(&key, &headers, "zz"));
        assert!(!csrf_ok(&key, &HeaderMap::new(), &csrf_token(&key, "abc")));
    }
}
