//! Profiles: sshkeep's own three and the user's, read by name, listed, and changed by the user
//! in person (a terminal and the vault secret, like every owner action).

use std::sync::Arc;

use crate::authority::{BUILTIN, Profile};
use crate::broker::core::fail::Fail;
use crate::broker::core::{Core, Peer, presence};
use crate::clock::now;
use crate::protocol::{ErrorCode, Presence, ProfileChange, ProfileInfo, Response};

/// The profile named `name`: a built-in one, else the user's.
pub fn lookup(core: &Core, name: &str) -> Result<Profile, Fail> {
    if let Some(p) = Profile::builtin(name) {
        return Ok(p);
    }
    let body = core.db()?.profile(name)?.ok_or_else(|| {
        Fail::new(
            ErrorCode::NotFound,
            format!(
                "no profile named '{name}': see `sshkeep profile list` (sshkeep's own are {})",
                BUILTIN.join(", ")
            ),
        )
    })?;
    Profile::from_json(&body).map_err(|e| {
        Fail::new(
            ErrorCode::Internal,
            format!("the stored profile '{name}' cannot be read ({e}): replace it with `sshkeep profile set {name}`"),
        )
    })
}

/// A profile as clients see it.
pub fn info(p: &Profile) -> ProfileInfo {
    ProfileInfo {
        name: p.name.clone(),
        builtin: BUILTIN.contains(&p.name.as_str()),
        description: p.description.clone(),
        body: serde_json::to_string_pretty(p).unwrap_or_default(),
    }
}

/// `profile list`: sshkeep's own first, then the user's by name.
pub fn list(core: &Core) -> Result<Response, Fail> {
    let mut profiles: Vec<ProfileInfo> = BUILTIN
        .iter()
        .filter_map(|n| Profile::builtin(n))
        .map(|p| info(&p))
        .collect();
    for (name, _) in core.db()?.profiles()? {
        profiles.push(info(&lookup(core, &name)?));
    }
    Ok(Response::Profiles { profiles })
}

/// `profile show`.
pub fn show(core: &Core, name: &str) -> Result<Response, Fail> {
    Ok(Response::Profile(info(&lookup(core, name)?)))
}

/// `profile create|set|remove`: the user, present, changes one of their profiles.
pub async fn change(
    core: &Arc<Core>,
    peer: &Peer,
    change: ProfileChange,
    presence: Presence,
) -> Result<Response, Fail> {
    let invalid = |m: String| Fail::new(ErrorCode::InvalidArgument, m);
    // Check the request before asking the user for anything.
    let (name, what) = match &change {
        ProfileChange::Put { body, replace } => {
            let p = Profile::from_json(body)
                .map_err(|e| invalid(format!("the profile is not valid: {e}")))?;
            let exists = core.db()?.profile(&p.name)?.is_some();
            match (replace, exists) {
                (false, true) => {
                    return Err(Fail::new(
                        ErrorCode::AlreadyExists,
                        format!(
                            "profile '{}' exists: change it with `sshkeep profile set {}`",
                            p.name, p.name
                        ),
                    ));
                }
                (true, false) => return Err(unknown(&p.name)),
                _ => {}
            }
            (p.name.clone(), format!("save profile '{}'", p.name))
        }
        ProfileChange::Remove { name } => {
            if core.db()?.profile(name)?.is_none() {
                return Err(unknown(name));
            }
            (name.clone(), format!("remove profile '{name}'"))
        }
    };
    if BUILTIN.contains(&name.as_str()) {
        return Err(invalid(format!(
            "'{name}' is one of sshkeep's own profiles and cannot be changed: create your own with `sshkeep profile create NAME --from {name}`"
        )));
    }
    let by = presence::present(core, peer, presence.passphrase, what).await?;
    let db = core.db()?;
    match change {
        ProfileChange::Put { body, .. } => {
            // Stored as sshkeep writes it, whatever spacing the client sent.
            let p = Profile::from_json(&body).map_err(invalid)?;
            let text = serde_json::to_string(&p).unwrap_or_default();
            db.put_profile(&name, &text, now())?;
            drop(db);
            core.audit(peer, "profile_save", None, None, format!("{name} by {by}"))?;
            Ok(Response::Profile(info(&p)))
        }
        ProfileChange::Remove { .. } => {
            db.remove_profile(&name)?;
            drop(db);
            core.audit(
                peer,
                "profile_remove",
                None,
                None,
                format!("{name} by {by}"),
            )?;
            Ok(Response::Ok {
                message: format!("profile '{name}' removed"),
            })
        }
    }
}

fn unknown(name: &str) -> Fail {
    Fail::new(
        ErrorCode::NotFound,
        format!("no profile of yours named '{name}': see `sshkeep profile list`"),
    )
}
