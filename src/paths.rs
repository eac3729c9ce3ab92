//! Every location sshkeep uses, found in one place.
//!
//! Search order:
//! 1. `SSHKEEP_HOME=DIR` puts everything under DIR: `DIR/config`, `DIR/state`, `DIR/run`.
//!    Tests and side-by-side profiles use it.
//! 2. Otherwise the XDG base directories: `$XDG_CONFIG_HOME/sshkeep` (default `~/.config/sshkeep`),
//!    `$XDG_STATE_HOME/sshkeep` (default `~/.local/state/sshkeep`), and `$XDG_RUNTIME_DIR/sshkeep`
//!    (when unset: `DIR/run` under the state directory).
//!
//! The state directory holds the SQLite database, the vault files and the broker log; the runtime
//! directory holds the broker's socket and lock. Both are created with mode 0700.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The resolved locations of one sshkeep home.
#[derive(Clone, Debug)]
pub struct Paths {
    /// Configuration (reserved for `config.toml`).
    pub config: PathBuf,
    /// Database, vault files, broker log.
    pub state: PathBuf,
    /// Socket and lock files.
    pub runtime: PathBuf,
}

impl Paths {
    /// Resolves the paths from the environment.
    pub fn from_env() -> Result<Self> {
        if let Some(home) = std::env::var_os("SSHKEEP_HOME").filter(|v| !v.is_empty()) {
            return Ok(Self::under(Path::new(&home)));
        }
        let user_home = std::env::home_dir()
            .context("cannot find the home directory: set HOME or SSHKEEP_HOME")?;
        let xdg = |var: &str, default: &str| {
            std::env::var_os(var)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| user_home.join(default))
        };
        let state = xdg("XDG_STATE_HOME", ".local/state").join("sshkeep");
        let runtime = std::env::var_os("XDG_RUNTIME_DIR")
            .filter(|v| !v.is_empty())
            .map(|d| PathBuf::from(d).join("sshkeep"))
            .unwrap_or_else(|| state.join("run"));
        Ok(Self {
            config: xdg("XDG_CONFIG_HOME", ".config").join("sshkeep"),
            state,
            runtime,
        })
    }

    /// All locations under one directory.
    pub fn under(home: &Path) -> Self {
        Self {
            config: home.join("config"),
            state: home.join("state"),
            runtime: home.join("run"),
        }
    }

    /// The broker's socket.
    pub fn socket(&self) -> PathBuf {
        self.runtime.join("broker.sock")
    }

    /// The broker's ssh-agent protocol socket (`sshkeep agent env`).
    pub fn agent_socket(&self) -> PathBuf {
        self.runtime.join("agent.sock")
    }

    /// Held by the running broker for its whole life.
    pub fn broker_lock(&self) -> PathBuf {
        self.runtime.join("broker.lock")
    }

    /// Held by a client while it starts a broker, so two clients never start two.
    pub fn start_lock(&self) -> PathBuf {
        self.runtime.join("start.lock")
    }

    /// The SQLite database.
    pub fn database(&self) -> PathBuf {
        self.state.join("sshkeep.db")
    }

    /// The vault's files (metadata and, for the passphrase backend, the wrapped identity).
    pub fn vault_dir(&self) -> PathBuf {
        self.state.join("vault")
    }

    /// The asciicast recording of shell `id` (`state/recordings/ID.cast`), or `None` for an id
    /// that is not a plain shell id (no path is ever built from other text).
    pub fn recording(&self, id: &str) -> Option<PathBuf> {
        let plain = !id.is_empty()
            && id.len() <= 64
            && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        plain.then(|| self.state.join("recordings").join(format!("{id}.cast")))
    }

    /// Where a broker started in the background writes its log.
    pub fn broker_log(&self) -> PathBuf {
        self.state.join("broker.log")
    }

    /// Creates the state and runtime directories (0700) and checks that they are private.
    pub fn ensure(&self) -> Result<()> {
        for dir in [&self.state, &self.runtime] {
            ensure_private_dir(dir)?;
        }
        Ok(())
    }
}

/// Creates `dir` with mode 0700 at creation time (no chmod race) and refuses one that another
/// user owns or that others can enter.
pub fn ensure_private_dir(dir: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let meta = std::fs::metadata(dir).with_context(|| format!("cannot stat {}", dir.display()))?;
    let uid = crate::system::current_uid();
    if meta.uid() != uid {
        bail!(
            "{} belongs to uid {}, not to you (uid {uid}); refusing to use it",
            dir.display(),
            meta.uid()
        );
    }
    if meta.permissions().mode() & 0o077 != 0 {
        bail!(
            "{} is open to other users (mode {:o}); run `chmod 700 {}`",
            dir.display(),
            meta.permissions().mode() & 0o777,
            dir.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_lives_under_sshkeep_home() {
        let p = Paths::under(Path::new("/tmp/h"));
        assert!(p.socket().starts_with("/tmp/h/run"));
        assert!(p.database().starts_with("/tmp/h/state"));
        assert!(p.vault_dir().starts_with("/tmp/h/state"));
    }

    #[test]
    fn refuses_a_directory_others_can_enter() {
        let t = tempfile::tempdir().expect("tempdir");
        let d = t.path().join("open");
        std::fs::create_dir(&d).expect("mkdir");
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let err = ensure_private_dir(&d).expect_err("must refuse");
        assert!(err.to_string().contains("chmod 700"));
        let fresh = t.path().join("fresh/run");
        ensure_private_dir(&fresh).expect("create");
        let mode = std::fs::metadata(&fresh)
            .expect("stat")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o700);
    }
}
