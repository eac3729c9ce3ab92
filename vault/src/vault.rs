//! The vault: create, unlock, lock, seal and open.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use age::secrecy::ExposeSecret;

use crate::meta::{META_VERSION, Meta};
use crate::{
    Backend, BackendChoice, SecretBytes, SecretString, VaultError, keyring_backend, passphrase,
};

const META_FILE: &str = "vault.json";
const WRAPPED_FILE: &str = "master.age";

/// An opened vault. Locked until one of the `unlock_*` calls succeeds; [`Vault::lock`] drops
/// the master identity from memory again (age zeroizes it on drop).
pub struct Vault {
    dir: PathBuf,
    meta: Meta,
    /// Boxed so that it stays at one address for its life: the broker asks the OS to keep that
    /// page out of swap ([`Vault::identity_memory`]), and no move leaves a copy behind.
    identity: Option<Box<age::x25519::Identity>>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("dir", &self.dir)
            .field("backend", &self.meta.backend)
            .field("unlocked", &self.identity.is_some())
            .finish()
    }
}

impl Vault {
    /// Whether a vault exists in `dir`.
    pub fn exists(dir: &Path) -> bool {
        dir.join(META_FILE).exists()
    }

    /// Whether `dir` holds any file of a vault (its metadata or a wrapped master identity),
    /// whole or not.
    pub fn any_trace(dir: &Path) -> bool {
        Self::exists(dir) || dir.join(WRAPPED_FILE).exists()
    }

    /// The metadata file and the wrapped identity file of a vault in `dir`.
    pub fn files(dir: &Path) -> (PathBuf, PathBuf) {
        (dir.join(META_FILE), dir.join(WRAPPED_FILE))
    }

    /// Opens the vault in `dir`, locked.
    pub fn open(dir: &Path) -> Result<Self, VaultError> {
        let path = dir.join(META_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(VaultError::NotInitialized(dir.to_path_buf()));
            }
            Err(source) => {
                return Err(VaultError::Io {
                    action: "cannot read",
                    path,
                    source,
                });
            }
        };
        let meta: Meta = serde_json::from_str(&text)
            .map_err(|e| VaultError::Corrupt(path.clone(), e.to_string()))?;
        if meta.version != META_VERSION {
            return Err(VaultError::Corrupt(
                path,
                format!("unknown version {}", meta.version),
            ));
        }
        age::x25519::Recipient::from_str(&meta.recipient)
            .map_err(|e| VaultError::Corrupt(path.clone(), e.to_string()))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            meta,
            identity: None,
        })
    }

    /// Creates a vault in `dir` with a new master identity and returns it unlocked, with a
    /// notice for the user when `auto` had to choose the passphrase.
    ///
    /// With [`BackendChoice::Auto`] and no reachable keyring, a passphrase is required: the
    /// error [`VaultError::PassphraseRequired`] tells the caller to ask for one.
    pub fn create(
        dir: &Path,
        choice: BackendChoice,
        pass: Option<&SecretString>,
    ) -> Result<(Self, Option<String>), VaultError> {
        if Self::exists(dir) {
            return Err(VaultError::AlreadyInitialized(dir.to_path_buf()));
        }
        if dir.join(WRAPPED_FILE).exists() {
            return Err(VaultError::Orphaned(
                dir.join(META_FILE),
                format!("{}", dir.join(WRAPPED_FILE).display()),
            ));
        }
        let identity = age::x25519::Identity::generate();
        let secret = SecretString::new(identity.to_string().expose_secret().to_owned());
        let keyring_user = format!(
            "vault-{}",
            identity.to_public().to_string().get(4..20).unwrap_or("x")
        );
        // The keyring is tried by storing the identity there: a Secret Service can answer a
        // probe and still refuse to store (no default collection), and auto then falls back.
        let (backend, notice) = match choice {
            BackendChoice::Keyring => {
                keyring_backend::put(&keyring_user, &secret)?;
                (Backend::Keyring, None)
            }
            BackendChoice::Passphrase => (Backend::Passphrase, None),
            BackendChoice::Auto => {
                let stored = match keyring_backend::keyring_available() {
                    Err(why) => Err(format!("no OS keyring is reachable ({why})")),
                    Ok(()) => keyring_backend::put(&keyring_user, &secret).map_err(|why| {
                        format!("the OS keyring answered but cannot keep the vault key ({why})")
                    }),
                };
                match stored {
                    Ok(()) => (Backend::Keyring, None),
                    Err(_) if pass.is_none() => return Err(VaultError::PassphraseRequired),
                    Err(why) => (
                        Backend::Passphrase,
                        Some(format!("{why}; the vault uses the passphrase backend")),
                    ),
                }
            }
        };
        let pass = match (backend, pass) {
            (Backend::Passphrase, None) => return Err(VaultError::PassphraseRequired),
            (Backend::Passphrase, Some(p)) if p.is_empty() => {
                return Err(VaultError::EmptyPassphrase);
            }
            (_, p) => p,
        };
        let meta = Meta {
            version: META_VERSION,
            backend,
            recipient: identity.to_public().to_string(),
            keyring_user,
        };
        let stored = ensure_dir(dir).and_then(|()| match (backend, pass) {
            (Backend::Keyring, _) => Ok(()),
            (Backend::Passphrase, Some(p)) => {
                write_private(&dir.join(WRAPPED_FILE), &passphrase::wrap(&secret, p)?)
            }
            (Backend::Passphrase, None) => Err(VaultError::PassphraseRequired),
        });
        if let Err(e) = stored {
            if backend == Backend::Keyring {
                let _ = keyring_backend::delete(&meta.keyring_user);
            }
            return Err(e);
        }
        let json =
            serde_json::to_vec_pretty(&meta).map_err(|e| VaultError::Encrypt(e.to_string()))?;
        if let Err(e) = write_private(&dir.join(META_FILE), &json) {
            if backend == Backend::Keyring {
                let _ = keyring_backend::delete(&meta.keyring_user);
            }
            return Err(e);
        }
        Ok((
            Self {
                dir: dir.to_path_buf(),
                meta,
                identity: Some(Box::new(identity)),
            },
            notice,
        ))
    }

    /// The backend holding the master identity.
    pub fn backend(&self) -> Backend {
        self.meta.backend
    }

    /// Whether the master identity is in memory.
    pub fn is_unlocked(&self) -> bool {
        self.identity.is_some()
    }

    /// The vault's public recipient (`age1...`).
    pub fn recipient(&self) -> &str {
        &self.meta.recipient
    }

    /// Unlocks through the OS keyring. Blocking.
    pub fn unlock_keyring(&mut self) -> Result<(), VaultError> {
        if self.meta.backend != Backend::Keyring {
            return Err(VaultError::PassphraseRequired);
        }
        let secret = keyring_backend::get(&self.meta.keyring_user)?;
        self.set_identity(&secret)
    }

    /// Unlocks with the passphrase. Takes about a second (scrypt).
    pub fn unlock_passphrase(&mut self, pass: &SecretString) -> Result<(), VaultError> {
        let secret = self.unwrap_identity(pass)?;
        self.set_identity(&secret)
    }

    /// Checks that `pass` opens this vault, without unlocking it or changing its state: the
    /// proof that the user is present before an owner action. Takes about a second (scrypt).
    pub fn verify_passphrase(&self, pass: &SecretString) -> Result<(), VaultError> {
        if self.meta.backend != Backend::Passphrase {
            return Err(VaultError::PassphraseRequired);
        }
        let secret = self.unwrap_identity(pass)?;
        self.parse_identity(&secret).map(drop)
    }

    /// The identity text in `master.age`, opened with the passphrase.
    fn unwrap_identity(&self, pass: &SecretString) -> Result<SecretString, VaultError> {
        let path = self.dir.join(WRAPPED_FILE);
        let ct = std::fs::read(&path).map_err(|source| VaultError::Io {
            action: "cannot read",
            path: path.clone(),
            source,
        })?;
        passphrase::unwrap(&ct, pass).map_err(|e| match e {
            VaultError::Damaged(why) => VaultError::Corrupt(path.clone(), why),
            other => other,
        })
    }

    fn set_identity(&mut self, secret: &SecretString) -> Result<(), VaultError> {
        let identity = self.parse_identity(secret)?;
        self.identity = Some(Box::new(identity));
        Ok(())
    }

    fn parse_identity(&self, secret: &SecretString) -> Result<age::x25519::Identity, VaultError> {
        let identity = age::x25519::Identity::from_str(secret.expose()).map_err(|_| {
            VaultError::Corrupt(self.dir.clone(), "master identity is malformed".into())
        })?;
        if identity.to_public().to_string() != self.meta.recipient {
            return Err(VaultError::Corrupt(
                self.dir.clone(),
                "the unlocked identity does not match this vault's recipient".into(),
            ));
        }
        Ok(identity)
    }

    /// Where the unlocked master identity lives (address and length), for a caller that can ask
    /// the OS to keep that memory out of swap (`mlock`). `None` while locked.
    pub fn identity_memory(&self) -> Option<(usize, usize)> {
        self.identity.as_deref().map(|id| {
            (
                id as *const age::x25519::Identity as usize,
                std::mem::size_of::<age::x25519::Identity>(),
            )
        })
    }

    /// Drops the master identity from memory.
    pub fn lock(&mut self) {
        self.identity = None;
    }

    /// Encrypts `plaintext` to the vault. Works while locked: only the public recipient is used.
    pub fn seal(&self, plaintext: &[u8]) -> Result<Vec<u8>, VaultError> {
        let recipient = age::x25519::Recipient::from_str(&self.meta.recipient)
            .map_err(|e| VaultError::Encrypt(e.to_string()))?;
        age::encrypt(&recipient, plaintext).map_err(|e| VaultError::Encrypt(e.to_string()))
    }

    /// Decrypts ciphertext made by [`Vault::seal`]. Needs the vault unlocked.
    pub fn open_sealed(&self, ciphertext: &[u8]) -> Result<SecretBytes, VaultError> {
        let identity = self.identity.as_deref().ok_or(VaultError::Locked)?;
        age::decrypt(identity, ciphertext)
            .map(SecretBytes::new)
            .map_err(|e| VaultError::Decrypt(e.to_string()))
    }
}

fn ensure_dir(dir: &Path) -> Result<(), VaultError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| VaultError::Io {
            action: "cannot create",
            path: dir.to_path_buf(),
            source,
        })
}

/// Writes `bytes` to `path` atomically with mode 0600 (temp file, fsync, rename).
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), VaultError> {
    let tmp = path.with_extension("tmp");
    let io = |action, source| VaultError::Io {
        action,
        path: path.to_path_buf(),
        source,
    };
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| io("cannot create", e))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| io("cannot write", e))?;
    std::fs::rename(&tmp, path).map_err(|e| io("cannot write", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pass(s: &str) -> SecretString {
        SecretString::new(s.into())
    }

    #[test]
    fn passphrase_vault_round_trip_and_wrong_passphrase() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (v, notice) = Vault::create(
            dir.path(),
            BackendChoice::Passphrase,
            Some(&pass("correct horse")),
        )
        .expect("create");
        assert!(notice.is_none());
        assert!(v.is_unlocked());
        let ct = v.seal(b"private key text").expect("seal");
        assert!(
            !ct.windows(7).any(|w| w == b"private"),
            "ciphertext must not contain the plaintext"
        );

        let mut v2 = Vault::open(dir.path()).expect("open");
        assert!(!v2.is_unlocked());
        assert!(matches!(
            v2.verify_passphrase(&pass("wrong")),
            Err(VaultError::WrongPassphrase)
        ));
        v2.verify_passphrase(&pass("correct horse"))
            .expect("verify");
        assert!(
            !v2.is_unlocked(),
            "verifying the passphrase does not unlock"
        );
        assert!(matches!(v2.open_sealed(&ct), Err(VaultError::Locked)));
        assert!(matches!(
            v2.unlock_passphrase(&pass("wrong")),
            Err(VaultError::WrongPassphrase)
        ));
        v2.unlock_passphrase(&pass("correct horse"))
            .expect("unlock");
        assert_eq!(
            v2.open_sealed(&ct).expect("open").expose(),
            b"private key text"
        );
        v2.lock();
        assert!(matches!(v2.open_sealed(&ct), Err(VaultError::Locked)));
        // Sealing needs only the public recipient.
        assert!(v2.seal(b"x").is_ok());
    }

    #[test]
    fn files_are_owner_only_and_hold_no_identity_in_clear() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let (v, _) = Vault::create(dir.path(), BackendChoice::Passphrase, Some(&pass("pw")))
            .expect("create");
        drop(v);
        for f in [META_FILE, WRAPPED_FILE] {
            let p = dir.path().join(f);
            let mode = std::fs::metadata(&p).expect("stat").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{f}");
            let body = std::fs::read(&p).expect("read");
            assert!(
                !body.windows(16).any(|w| w == b"AGE-SECRET-KEY-1"),
                "{f} holds the identity in clear"
            );
        }
    }

    #[test]
    fn refuses_to_overwrite_and_needs_a_passphrase() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(matches!(
            Vault::create(dir.path(), BackendChoice::Passphrase, None),
            Err(VaultError::PassphraseRequired)
        ));
        assert!(matches!(
            Vault::create(dir.path(), BackendChoice::Passphrase, Some(&pass(""))),
            Err(VaultError::EmptyPassphrase)
        ));
        Vault::create(dir.path(), BackendChoice::Passphrase, Some(&pass("pw"))).expect("create");
        assert!(matches!(
            Vault::create(dir.path(), BackendChoice::Passphrase, Some(&pass("pw"))),
            Err(VaultError::AlreadyInitialized(_))
        ));
    }

    #[test]
    fn open_without_vault_says_how_to_create_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = Vault::open(dir.path()).expect_err("no vault");
        assert!(err.to_string().contains("sshkeep vault init"));
    }
}
