//! Local paths a client may read or write. The MCP adapter passes the roots it was configured
//! with (default: its working directory) so that an agent cannot read `~/.ssh` or overwrite
//! `~/.bashrc` through a download; the CLI passes none (a person at a terminal can use any path).
//!
//! Every file the broker touches is checked, not only the path given: a directory being uploaded
//! may contain symlinks that point elsewhere (they are skipped), and a download never writes
//! through an existing symlink (`O_NOFOLLOW`).
//!
//! Whatever the roots, a confined client never reaches sshkeep's own files (the state directory
//! with the database and `master.age`, the configuration and runtime directories), the
//! passphrase file or `~/.ssh`: a root of `$HOME` must not hand an agent the vault and the
//! passphrase that opens it.

use std::path::{Component, Path, PathBuf};

use crate::broker::core::fail::Fail;
use crate::paths::Paths;
use crate::protocol::ErrorCode;

/// The allowed local directories, canonicalized; `None` allows everything.
#[derive(Clone, Debug)]
pub struct Roots(Option<Vec<PathBuf>>, Vec<PathBuf>);

/// What no confined client may read or write: sshkeep's own directories, the passphrase file
/// and `~/.ssh`, both as given and with symlinks resolved.
pub fn protected(paths: &Paths) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = vec![
        paths.state.clone(),
        paths.config.clone(),
        paths.runtime.clone(),
    ];
    if let Some(f) = std::env::var_os("SSHKEEP_PASSPHRASE_FILE").filter(|v| !v.is_empty()) {
        out.push(PathBuf::from(f));
    }
    if let Some(home) = std::env::home_dir() {
        out.push(home.join(".ssh"));
    }
    let real: Vec<PathBuf> = out
        .iter()
        .filter_map(|p| std::fs::canonicalize(p).ok())
        .collect();
    out.extend(real);
    out.retain(|p| p.is_absolute());
    out
}

impl Roots {
    /// Canonicalizes the client's roots (a root that does not exist is an error); `protected`
    /// stays out of reach of a confined client.
    pub fn new(roots: Option<Vec<String>>, protected: Vec<PathBuf>) -> Result<Self, Fail> {
        let Some(roots) = roots else {
            return Ok(Self(None, Vec::new()));
        };
        let mut out = Vec::new();
        for r in roots {
            let p = std::fs::canonicalize(&r).map_err(|e| {
                Fail::new(
                    ErrorCode::InvalidArgument,
                    format!("the allowed local root {r} cannot be used: {e}"),
                )
            })?;
            out.push(p);
        }
        Ok(Self(Some(out), protected))
    }

    fn allows(&self, canonical: &Path) -> bool {
        match &self.0 {
            None => true,
            Some(roots) => roots.iter().any(|r| canonical.starts_with(r)),
        }
    }

    /// The protected location `canonical` is in, or (for a directory, which would be copied
    /// whole) contains.
    fn protected_by(&self, canonical: &Path, is_dir: bool) -> Option<&Path> {
        self.1
            .iter()
            .find(|p| canonical.starts_with(p) || (is_dir && p.starts_with(canonical)))
            .map(PathBuf::as_path)
    }

    fn refuse_protected(&self, path: &Path, protected: &Path) -> Fail {
        Fail::new(
            ErrorCode::OutsideRoots,
            format!(
                "the local path {} is or holds {}, which file transfers from this client may never touch (sshkeep's vault and database, its passphrase file, ~/.ssh); the user copies such files by hand if ever needed",
                path.display(),
                protected.display()
            ),
        )
    }

    fn refuse(&self, path: &Path) -> Fail {
        let roots = self
            .0
            .as_ref()
            .map(|r| {
                r.iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        if roots.is_empty() {
            return Fail::new(
                ErrorCode::OutsideRoots,
                format!(
                    "the local path {} cannot be used: no local directory is open to this client's file transfers; the user starts `sshkeep mcp --root DIR` to allow one",
                    path.display()
                ),
            );
        }
        Fail::new(
            ErrorCode::OutsideRoots,
            format!(
                "the local path {} is outside the directories this client may use ({roots}); \
                 use a path under them, or start `sshkeep mcp` with --root for another directory",
                path.display()
            ),
        )
    }

    /// An existing path to read: its real location must be under a root.
    pub fn check_read(&self, path: &Path) -> Result<PathBuf, Fail> {
        let abs = absolute(path)?;
        let real = std::fs::canonicalize(&abs).map_err(|e| local_fail("read", &abs, e))?;
        if !self.allows(&real) {
            return Err(self.refuse(&abs));
        }
        if self.0.is_some()
            && let Some(p) = self.protected_by(&real, real.is_dir())
        {
            return Err(self.refuse_protected(&abs, p));
        }
        Ok(real)
    }

    /// A path to create or overwrite: the real location of its nearest existing ancestor must
    /// be under a root, and nothing on the way may be `..`.
    pub fn check_write(&self, path: &Path) -> Result<PathBuf, Fail> {
        let abs = absolute(path)?;
        if abs.components().any(|c| c == Component::ParentDir) {
            return Err(Fail::new(
                ErrorCode::InvalidArgument,
                format!(
                    "the local path {} contains '..': give it without",
                    abs.display()
                ),
            ));
        }
        let mut existing = abs.as_path();
        let mut rest = Vec::new();
        loop {
            match std::fs::canonicalize(existing) {
                Ok(real) => {
                    let mut full = real;
                    for part in rest.iter().rev() {
                        full.push(part);
                    }
                    if !self.allows(&full) {
                        return Err(self.refuse(&abs));
                    }
                    if self.0.is_some()
                        && let Some(p) = self.protected_by(&full, full.is_dir())
                    {
                        return Err(self.refuse_protected(&abs, p));
                    }
                    return Ok(full);
                }
                Err(_) => {
                    let (Some(parent), Some(name)) = (existing.parent(), existing.file_name())
                    else {
                        return Err(self.refuse(&abs));
                    };
                    rest.push(name.to_os_string());
                    existing = parent;
                }
            }
        }
    }
}

fn absolute(path: &Path) -> Result<PathBuf, Fail> {
    if path.is_absolute() {
        Ok(path.to_path_buf())
    } else {
        Err(Fail::new(
            ErrorCode::InvalidArgument,
            format!(
                "the local path {} is relative: clients send absolute paths",
                path.display()
            ),
        ))
    }
}

/// A local I/O error naming the path.
pub fn local_fail(what: &str, path: &Path, e: std::io::Error) -> Fail {
    let code = match e.kind() {
        std::io::ErrorKind::NotFound => ErrorCode::NotFound,
        std::io::ErrorKind::PermissionDenied => ErrorCode::PermissionDenied,
        _ => ErrorCode::Internal,
    };
    Fail::new(
        code,
        format!("cannot {what} the local path {}: {e}", path.display()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_confine_reads_and_writes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        std::fs::create_dir(&root).expect("mkdir");
        std::fs::write(root.join("a"), "x").expect("write");
        std::fs::write(dir.path().join("secret"), "x").expect("write");
        std::os::unix::fs::symlink(dir.path().join("secret"), root.join("link")).expect("symlink");
        let roots = Roots::new(Some(vec![root.display().to_string()]), Vec::new()).expect("roots");
        assert!(roots.check_read(&root.join("a")).is_ok());
        assert_eq!(
            roots
                .check_read(&dir.path().join("secret"))
                .map_err(|f| f.code)
                .err(),
            Some(ErrorCode::OutsideRoots)
        );
        // A symlink inside the root that points out of it is judged by where it points.
        assert!(roots.check_read(&root.join("link")).is_err());
        assert!(roots.check_write(&root.join("new/deeper/file")).is_ok());
        assert!(roots.check_write(&dir.path().join("elsewhere")).is_err());
        assert!(roots.check_write(&root.join("../escape")).is_err());
        assert!(
            Roots::new(None, Vec::new())
                .expect("none")
                .check_write(Path::new("/tmp/x"))
                .is_ok()
        );
    }
}
