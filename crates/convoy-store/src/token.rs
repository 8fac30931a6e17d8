//! API tokens: how they look, and how they are kept.
//!
//! A token is `cvy_<id>_<secret>`. Only the sha256 of the whole token is
//! stored; the `id` lets the store find the row without comparing hashes in
//! SQL, and the hash is then compared in constant time, so response timing
//! says nothing about how much of a guessed token was right.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// A freshly made token. It exists in clear only in this value; its `Debug`
/// hides it so it cannot end up in a log by accident.
pub struct TokenSecret {
    id: String,
    token: String,
}

impl std::fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenSecret({}, <redacted>)", self.id)
    }
}

impl TokenSecret {
    pub(crate) fn generate() -> Self {
        let mut id = [0u8; 6];
        let mut secret = [0u8; 24];
        let mut rng = rand::rng();
        rng.fill_bytes(&mut id);
        rng.fill_bytes(&mut secret);
        let id = hex::encode(id);
        let token = format!("cvy_{id}_{}", hex::encode(secret));
        Self { id, token }
    }

    /// The public id, which may be shown and logged.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The token itself, to hand to the user once.
    pub fn expose(&self) -> &str {
        &self.token
    }
}

/// The id part of a presented token, if it has Convoy's shape.
pub(crate) fn token_id(presented: &str) -> Option<&str> {
    let rest = presented.strip_prefix("cvy_")?;
    let (id, secret) = rest.split_once('_')?;
    (id.len() == 12 && !secret.is_empty()).then_some(id)
}

/// The stored form of a token.
pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Constant-time equality of a presented token's hash with a stored one.
pub(crate) fn hashes_match(presented: &str, stored: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    let hash = hash_token(presented);
    hash.as_slice().ct_eq(stored).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_through_their_hash() {
        let t = TokenSecret::generate();
        assert_eq!(token_id(t.expose()), Some(t.id()));
        let stored = hash_token(t.expose());
        assert!(hashes_match(t.expose(), &stored));
        assert!(!hashes_match("cvy_000000000000_x", &stored));
        assert!(!format!("{t:?}").contains(&t.expose()[17..]));
        assert_eq!(token_id("Bearer x"), None);
    }
}
