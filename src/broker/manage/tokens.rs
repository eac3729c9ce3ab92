//! Bearer tokens for `sshkeep mcp --http`. The user, present, makes one for a profile and sees
//! its text once; the broker keeps its SHA-256 hash. The HTTP adapter asks here for each request
//! it gets: a token that matches gives the profile that request works under; one that does not
//! (missing, unknown, revoked) is refused and audited, without its text.

use std::sync::Arc;

use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::profiles;
use crate::broker::core::fail::Fail;
use crate::broker::core::{Core, Peer, presence};
use crate::clock::now;
use crate::db::McpTokenRow;
use crate::protocol::{ErrorCode, McpTokenInfo, Presence, Response, SecretString};

/// What every token starts with, so a leaked one is recognisable (secret scanners, the user).
pub const PREFIX: &str = "skp_";

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A fresh token: the prefix and 32 random bytes, base64url.
fn fresh() -> SecretString {
    let mut bytes = Zeroizing::new([0u8; 32]);
    rand::fill(&mut bytes[..]);
    let mut text = Zeroizing::new(String::with_capacity(PREFIX.len() + 43));
    text.push_str(PREFIX);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(&bytes[..], &mut text);
    SecretString::new(std::mem::take(&mut *text))
}

fn info(r: &McpTokenRow) -> McpTokenInfo {
    McpTokenInfo {
        name: r.name.clone(),
        profile: r.profile.clone(),
        created: r.created,
        last_used: r.last_used,
    }
}

/// Names are for the user to tell tokens apart and to revoke them by.
fn valid_name(name: &str) -> Result<(), Fail> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Fail::new(
            ErrorCode::InvalidArgument,
            format!("{name:?} is not a token name: use up to 64 letters, digits, '-', '_' or '.'"),
        ))
    }
}

/// `mcp token create NAME --profile P`: the user, present, makes a token.
pub async fn create(
    core: &Arc<Core>,
    peer: &Peer,
    name: String,
    profile: String,
    presence: Presence,
) -> Result<Response, Fail> {
    valid_name(&name)?;
    // The profile must exist now; one removed later leaves its tokens refused at every hello.
    profiles::lookup(core, &profile)?;
    if core.db()?.mcp_tokens()?.iter().any(|t| t.name == name) {
        return Err(taken(&name));
    }
    let by = presence::present(
        core,
        peer,
        presence.passphrase,
        format!("create the MCP token '{name}' for profile '{profile}'"),
    )
    .await?;
    let token = fresh();
    let created = now();
    if !core
        .db()?
        .insert_mcp_token(&name, &hash(token.expose()), &profile, created)?
    {
        return Err(taken(&name));
    }
    core.audit(
        peer,
        "mcp_token_create",
        None,
        None,
        format!("{name} for profile {profile} by {by}"),
    )?;
    Ok(Response::McpTokenCreated {
        info: McpTokenInfo {
            name,
            profile,
            created,
            last_used: None,
        },
        token,
    })
}

fn taken(name: &str) -> Fail {
    Fail::new(
        ErrorCode::AlreadyExists,
        format!(
            "there is a token named '{name}': revoke it first with `sshkeep mcp token revoke {name}`, or pick another name"
        ),
    )
}

/// `mcp token list`.
pub fn list(core: &Core) -> Result<Response, Fail> {
    Ok(Response::McpTokens {
        tokens: core.db()?.mcp_tokens()?.iter().map(info).collect(),
    })
}

/// `mcp token revoke NAME`: the user, present, ends a token; requests carrying it get 401 from
/// then on.
pub async fn revoke(
    core: &Arc<Core>,
    peer: &Peer,
    name: String,
    presence: Presence,
) -> Result<Response, Fail> {
    if !core.db()?.mcp_tokens()?.iter().any(|t| t.name == name) {
        return Err(Fail::new(
            ErrorCode::NotFound,
            format!("no token named '{name}': see `sshkeep mcp token list`"),
        ));
    }
    let by = presence::present(
        core,
        peer,
        presence.passphrase,
        format!("revoke the MCP token '{name}'"),
    )
    .await?;
    core.db()?.remove_mcp_token(&name)?;
    core.audit(
        peer,
        "mcp_token_revoke",
        None,
        None,
        format!("{name} by {by}"),
    )?;
    Ok(Response::Ok {
        message: format!("token '{name}' revoked"),
    })
}

/// The HTTP adapter's question: which token is this, and under which profile? Every stored hash
/// is compared, in constant time, so how long the answer takes says nothing about the token.
pub fn check(core: &Core, peer: &Peer, token: SecretString) -> Result<Response, Fail> {
    let rows = core.db()?.mcp_tokens()?;
    let missing = token.is_empty();
    let mut found = None;
    if !missing {
        let h = hash(token.expose());
        for r in &rows {
            if bool::from(r.hash.as_slice().ct_eq(&h[..])) {
                found = Some(r);
            }
        }
    }
    drop(token);
    let Some(r) = found else {
        let why = if missing {
            "carried no bearer token"
        } else {
            "carried a bearer token that is unknown or revoked"
        };
        core.audit(
            peer,
            "mcp_token_refuse",
            None,
            None,
            format!("an HTTP request to `sshkeep mcp --http` {why}"),
        )?;
        return Err(Fail::new(
            ErrorCode::PermissionDenied,
            "the bearer token is missing, unknown or revoked: the user makes one with `sshkeep mcp token create NAME --profile P`",
        ));
    };
    core.db()?.touch_mcp_token(&r.name, now())?;
    Ok(Response::McpTokenValid {
        name: r.name.clone(),
        profile: r.profile.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_prefixed_32_random_bytes_in_base64url() {
        let (a, b) = (fresh(), fresh());
        assert!(a.expose().starts_with(PREFIX));
        assert_eq!(a.expose().len(), PREFIX.len() + 43);
        assert!(
            a.expose()[PREFIX.len()..]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_ne!(a.expose(), b.expose());
        assert_ne!(hash(a.expose()), hash(b.expose()));
    }

    #[test]
    fn names_are_words() {
        assert!(valid_name("ci-bot.1").is_ok());
        assert!(valid_name("").is_err());
        assert!(valid_name("a b").is_err());
    }
}
