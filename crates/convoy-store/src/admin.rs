//! Administrative operations over any [`Store`], for the token commands
//! (which work with or without a server running on the same backend).

use crate::{Store, StoreError, StoreResult, TokenInfo, UserId};

async fn require_user(store: &dyn Store, login: &str) -> StoreResult<UserId> {
    store
        .user_id(login)
        .await?
        .ok_or_else(|| StoreError::UserNotFound {
            login: login.to_owned(),
        })
}

/// The tokens of the user `login`, for `cargo convoy token list`.
pub async fn tokens_of(store: &dyn Store, login: &str) -> StoreResult<Vec<TokenInfo>> {
    let user = require_user(store, login).await?;
    store.tokens(user).await
}

/// Revokes one token of `login` (`Some(id)`) or all of them; returns the
/// ids revoked. Servers on the same backend stop accepting them at once,
/// since every request reads the token row.
pub async fn revoke_tokens(
    store: &dyn Store,
    login: &str,
    id: Option<&str>,
) -> StoreResult<Vec<String>> {
    let user = require_user(store, login).await?;
    let ids: Vec<String> = match id {
        Some(id) => vec![id.to_owned()],
        None => store
            .tokens(user)
            .await?
            .into_iter()
            .filter(|t| t.stage.is_none())
            .map(|t| t.id)
            .collect(),
    };
    let mut revoked = Vec::new();
    for id in ids {
        if store.revoke_token(user, &id).await? {
            revoked.push(id);
        }
    }
    Ok(revoked)
}
