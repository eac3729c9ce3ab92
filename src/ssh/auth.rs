//! Logging in with what a connection has: its key (with its OpenSSH certificate, if one is
//! attached), and its stored password, by `password` and then `keyboard-interactive`. Only
//! these are offered, each at most once, so a server's MaxAuthTries is never near.
//!
//! Keyboard-interactive answers the password prompt from the vault. Any other prompt (a
//! one-time code, a question) goes to the person at the CLI's terminal when the login is made
//! for one ([`Person`]); otherwise it ends the login with [`ErrorCode::NeedsPerson`], whose next
//! step is the command that person runs: the broker never guesses, and never hands a server's
//! prompt to an agent.

use std::sync::Arc;

use russh::client::{AuthResult, Handle, KeyboardInteractiveAuthResponse};
use russh::keys::ssh_key::Certificate;
use russh::keys::{HashAlg, PrivateKey};
use russh::{MethodKind, MethodSet};

use super::connect::{Endpoint, login as key_login};
use super::{Person, SshError, Verifier};
use crate::protocol::{
    ErrorCode, LoginPrompt, LoginQuestion, NextStep, PERSON_QUESTIONS, PERSON_ROUNDS, SecretString,
};

/// What a login may use. The password and key zeroize themselves when dropped.
pub struct Creds {
    /// The key and its name in the vault.
    pub key: Option<(Arc<PrivateKey>, String)>,
    /// The certificate attached to the key.
    pub cert: Option<Certificate>,
    /// The password and its secret's name.
    pub password: Option<(SecretString, String)>,
    /// A key that stays in another ssh-agent (it signs there), and its name.
    pub agent_key: Option<(super::Credential, String)>,
}

/// Whether a keyboard-interactive prompt asks for the password and nothing else.
pub fn asks_for_password(prompt: &str) -> bool {
    let p = prompt.trim().to_ascii_lowercase();
    (p.starts_with("password") || p.contains("password for") || p.ends_with("'s password:"))
        && ![
            "code",
            "otp",
            "token",
            "verification",
            "new password",
            "pin",
        ]
        .iter()
        .any(|w| p.contains(w))
}

fn failed(what: &str) -> impl Fn(russh::Error) -> SshError + '_ {
    move |e| SshError::new(ErrorCode::Ssh, format!("{what} failed: {e}"))
}

/// The command a person runs at a terminal to log in to `ep` once.
pub fn open_command(ep: &Endpoint) -> String {
    let target = ep.conn_name.clone().unwrap_or_else(|| {
        if ep.host.contains(':') {
            format!("{}@[{}]:{}", ep.user, ep.host, ep.port)
        } else {
            format!("{}@{}:{}", ep.user, ep.host, ep.port)
        }
    });
    format!("sshkeep conn open {target}")
}

/// Logs in with `creds`, each method at most once, in the order key (certificate first),
/// password, keyboard-interactive; a method the server has said it does not take is skipped.
/// With `person` (a person at the CLI's terminal), keyboard-interactive questions the vault
/// cannot answer go to them, and a login with a key but no stored password may end in
/// keyboard-interactive too (a second factor after the key, or a password nobody stored).
pub async fn authenticate(
    ep: &Endpoint,
    handle: &mut Handle<Verifier>,
    creds: Creds,
    person: Option<&Person>,
) -> Result<(), SshError> {
    let Creds {
        key,
        cert,
        password,
        agent_key,
    } = creds;
    // A key held by another ssh-agent signs there; a stored password (or the person) is the
    // fallback.
    if let Some((cred, name)) = agent_key {
        match super::login_with(ep, handle, cred, &name).await {
            Ok(()) => return Ok(()),
            Err(e) if password.is_none() && person.is_none() => return Err(e),
            Err(_) => {}
        }
    }
    // A key alone, with nobody at a terminal, logs in as it always has.
    if password.is_none() && person.is_none() {
        let Some((key, name)) = key else {
            return Err(SshError::new(ErrorCode::NoKey, "nothing to log in with"));
        };
        return match cert {
            Some(cert) => cert_login(ep, handle, key, cert, &name).await,
            None => key_login(ep, handle, key, &name).await,
        };
    }
    let (password, secret) = match password {
        Some((p, s)) => (Some(p), Some(s)),
        None => (None, None),
    };
    let mut tried = Vec::new();
    let mut methods: Option<MethodSet> = None;
    let allows = |m: &Option<MethodSet>, k: MethodKind| m.as_ref().is_none_or(|s| s.contains(&k));
    let key_name = key.as_ref().map(|k| k.1.clone());
    if let Some((key, name)) = key {
        let r = match cert {
            Some(cert) => {
                let r = handle
                    .authenticate_openssh_cert(ep.user.clone(), key, cert)
                    .await;
                crate::system::wipe::secrets_touched();
                r.map_err(failed("certificate authentication"))?
            }
            None => {
                let rsa_hash = super::connect::rsa_hash(handle, key.algorithm().is_rsa()).await;
                let r = handle
                    .authenticate_publickey(
                        ep.user.clone(),
                        russh::keys::PrivateKeyWithHashAlg::new(key, rsa_hash),
                    )
                    .await;
                crate::system::wipe::secrets_touched();
                r.map_err(failed("key authentication"))?
            }
        };
        match r {
            AuthResult::Success => return Ok(()),
            AuthResult::Failure {
                remaining_methods, ..
            } => methods = Some(remaining_methods),
        }
        tried.push(format!("key '{name}'"));
    }
    if let Some(password) = &password
        && allows(&methods, MethodKind::Password)
    {
        // russh takes the password as a String of its own; it is dropped when sent.
        let r = handle
            .authenticate_password(ep.user.clone(), password.expose())
            .await;
        crate::system::wipe::secrets_touched();
        match r.map_err(failed("password authentication"))? {
            AuthResult::Success => return Ok(()),
            AuthResult::Failure {
                remaining_methods, ..
            } => methods = Some(remaining_methods),
        }
        tried.push("password".into());
    }
    if allows(&methods, MethodKind::KeyboardInteractive) {
        match keyboard_interactive(ep, handle, password.as_ref(), person).await? {
            None => return Ok(()),
            Some(m) => methods = Some(m),
        }
        tried.push("keyboard-interactive".into());
    }
    let offered = methods
        .map(|m| {
            m.iter()
                .map(|k| <&str>::from(k).to_string())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let problem = format!(
        "{} refused the login of user {} (tried {}; the server takes: {})",
        ep.label(),
        ep.user,
        if tried.is_empty() {
            "nothing it takes".to_string()
        } else {
            tried.join(", ")
        },
        if offered.is_empty() { "?" } else { &offered }
    );
    if person.is_some_and(|p| p.answered() > 0) {
        return Err(SshError::then(
            ErrorCode::AuthFailed,
            format!(
                "{problem}: the answers typed at the terminal were not accepted (a wrong or expired code?)"
            ),
            NextStep::LogInAtTerminal {
                command: open_command(ep),
            },
        ));
    }
    let step = match (secret, key_name) {
        (Some(secret), _) => NextStep::UserOnly {
            command: format!("sshkeep secret add {secret} --host {}:{}", ep.host, ep.port),
        },
        (None, Some(key)) => NextStep::AuthorizeKey { key },
        (None, None) => NextStep::TestConn,
    };
    Err(SshError::then(ErrorCode::AuthFailed, problem, step))
}

/// Keyboard-interactive: the password prompt answered from the stored password, other
/// questions put to the person at the terminal when there is one. `None` when logged in, or
/// the methods the server still takes when it refused.
async fn keyboard_interactive(
    ep: &Endpoint,
    handle: &mut Handle<Verifier>,
    password: Option<&SecretString>,
    person: Option<&Person>,
) -> Result<Option<MethodSet>, SshError> {
    let mut r = handle
        .authenticate_keyboard_interactive_start(ep.user.clone(), None)
        .await
        .map_err(failed("keyboard-interactive authentication"))?;
    // PAM may send a banner-only round (no prompts) before the question; a server that keeps
    // asking is stopped after a few rounds, answering the password at most once and asking the
    // person at most PERSON_ROUNDS times.
    let mut answered = false;
    let mut asked = 0;
    for _ in 0..4 + PERSON_ROUNDS {
        match r {
            KeyboardInteractiveAuthResponse::Success => return Ok(None),
            KeyboardInteractiveAuthResponse::Failure {
                remaining_methods, ..
            } => return Ok(Some(remaining_methods)),
            KeyboardInteractiveAuthResponse::InfoRequest {
                name,
                instructions,
                prompts,
            } => {
                let is_password =
                    prompts.len() == 1 && !prompts[0].echo && asks_for_password(&prompts[0].prompt);
                let responses = if prompts.is_empty() {
                    Vec::new()
                } else if let Some(password) = password.filter(|_| !answered && is_password) {
                    answered = true;
                    vec![password.expose().to_string()]
                } else if let Some(person) = person.filter(|p| p.present()) {
                    if asked == PERSON_ROUNDS {
                        break;
                    }
                    if prompts.len() > PERSON_QUESTIONS {
                        return Err(SshError::new(
                            ErrorCode::AuthFailed,
                            format!(
                                "{} asks {} questions at once during keyboard-interactive login; sshkeep puts at most {PERSON_QUESTIONS} to the person, so the login was refused",
                                ep.label(),
                                prompts.len()
                            ),
                        ));
                    }
                    asked += 1;
                    let prompt = LoginPrompt {
                        server: ep.label(),
                        name,
                        instructions,
                        questions: prompts
                            .into_iter()
                            .map(|p| LoginQuestion {
                                text: p.prompt,
                                echo: p.echo,
                            })
                            .collect(),
                    };
                    // The answers are wiped when dropped; russh's copies go when sent.
                    let answers = person.ask(prompt).await?;
                    answers.iter().map(|a| a.expose().to_string()).collect()
                } else {
                    // The server's own words are not passed on: an agent never reads them.
                    return Err(SshError::then(
                        ErrorCode::NeedsPerson,
                        format!(
                            "{} asks a question at login that only the user can answer at a terminal (a one-time code or the like; sshkeep answers only the password prompt, and never hands a server's question to an agent)",
                            ep.label(),
                        ),
                        NextStep::LogInAtTerminal {
                            command: open_command(ep),
                        },
                    ));
                };
                r = handle
                    .authenticate_keyboard_interactive_respond(responses)
                    .await
                    .map_err(failed("keyboard-interactive authentication"))?;
                crate::system::wipe::secrets_touched();
            }
        }
    }
    Err(SshError::new(
        ErrorCode::AuthFailed,
        format!(
            "{} kept asking during keyboard-interactive login",
            ep.label()
        ),
    ))
}

/// Offers the certificate with its key.
async fn cert_login(
    ep: &Endpoint,
    handle: &mut Handle<Verifier>,
    key: Arc<PrivateKey>,
    cert: Certificate,
    key_name: &str,
) -> Result<(), SshError> {
    let ca = cert
        .signature_key()
        .fingerprint(HashAlg::Sha256)
        .to_string();
    let r = handle
        .authenticate_openssh_cert(ep.user.clone(), key, cert)
        .await;
    crate::system::wipe::secrets_touched();
    match r.map_err(failed("certificate authentication"))? {
        AuthResult::Success => Ok(()),
        AuthResult::Failure { .. } => Err(SshError::then(
            ErrorCode::AuthFailed,
            format!(
                "{} refused key '{key_name}' with its certificate (CA {ca}) for user {}: the server must list the CA in TrustedUserCAKeys and the certificate must name the user as a principal",
                ep.label(),
                ep.user
            ),
            NextStep::AuthorizeKey {
                key: key_name.to_string(),
            },
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::asks_for_password;

    #[test]
    fn only_password_prompts_are_answered() {
        assert!(asks_for_password("Password: "));
        assert!(asks_for_password("alice@host's password: "));
        assert!(asks_for_password("Password for alice@example: "));
        assert!(!asks_for_password("Verification code: "));
        assert!(!asks_for_password("One-time password (OTP): "));
        assert!(!asks_for_password("New password: "));
        assert!(!asks_for_password("Enter PIN for token: "));
    }
}
