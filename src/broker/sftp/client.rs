//! An SFTP client on a channel of a session: the operations sshkeep uses, with errors that name
//! the path and the server. Paths are SFTP packet data; none is ever put into shell text.

use std::sync::Arc;

use russh_sftp::client::RawSftpSession;
use russh_sftp::client::error::Error as SftpError;
use russh_sftp::protocol::{FileAttributes, OpenFlags, Packet, StatusCode};

use crate::broker::core::fail::Fail;
use crate::broker::core::sessions::gate::Permit;
use crate::broker::core::sessions::{Occupancy, Session};
use crate::protocol::{EntryKind, ErrorCode, RemoteEntry};

/// Bytes per read or write request; OpenSSH's sftp-server accepts up to 256 KiB but 32 KiB is
/// what every server takes.
pub const CHUNK: u32 = 32 * 1024;
/// Requests in flight during a transfer.
pub const WINDOW: usize = 32;

/// An open SFTP subsystem.
pub struct Sftp {
    pub raw: Arc<RawSftpSession>,
    pub label: String,
    posix_rename: bool,
    _permit: Permit,
    _occupancy: Occupancy,
}

impl Sftp {
    /// Opens the SFTP subsystem on a channel of `session` (waiting for a free channel).
    pub async fn open(session: &Arc<Session>) -> Result<Self, Fail> {
        let mut occupancy = session.occupy();
        let (channel, permit) = session.open_channel().await?;
        occupancy.running();
        let label = session.label.clone();
        if let Err(e) = channel.request_subsystem(true, "sftp").await {
            let _ = channel.close().await;
            return Err(Fail::new(
                ErrorCode::Ssh,
                format!(
                    "{label} refused the SFTP subsystem: {e} (is `Subsystem sftp` configured in its sshd_config?)"
                ),
            ));
        }
        let raw = RawSftpSession::new(channel.into_stream());
        raw.set_timeout(60);
        let version = raw.init().await.map_err(|e| {
            Fail::new(
                ErrorCode::Ssh,
                format!("{label} did not start SFTP: {e} (does the login print text for non-interactive sessions?)"),
            )
        })?;
        let posix_rename = version
            .extensions
            .get("posix-rename@openssh.com")
            .is_some_and(|v| v == "1");
        Ok(Self {
            raw: Arc::new(raw),
            label,
            posix_rename,
            _permit: permit,
            _occupancy: occupancy,
        })
    }

    /// Maps an SFTP error on `path` to a failure the user can act on.
    pub fn fail(&self, what: &str, path: &str, e: SftpError) -> Fail {
        fail_on(&self.label, what, path, e)
    }

    /// `stat` (follows symlinks).
    pub async fn stat(&self, path: &str) -> Result<FileAttributes, Fail> {
        self.raw
            .stat(path)
            .await
            .map(|a| a.attrs)
            .map_err(|e| self.fail("stat", path, e))
    }

    /// `lstat`: `None` when the path does not exist.
    pub async fn lstat_opt(&self, path: &str) -> Result<Option<FileAttributes>, Fail> {
        match self.raw.lstat(path).await {
            Ok(a) => Ok(Some(a.attrs)),
            Err(SftpError::Status(s)) if s.status_code == StatusCode::NoSuchFile => Ok(None),
            Err(e) => Err(self.fail("stat", path, e)),
        }
    }

    /// The entries of a directory, without `.` and `..`, sorted by name.
    pub async fn list(&self, path: &str) -> Result<Vec<RemoteEntry>, Fail> {
        let handle = self
            .raw
            .opendir(path)
            .await
            .map_err(|e| self.fail("list", path, e))?
            .handle;
        let mut out = Vec::new();
        loop {
            match self.raw.readdir(handle.as_str()).await {
                Ok(name) => {
                    for f in name.files {
                        if f.filename == "." || f.filename == ".." {
                            continue;
                        }
                        out.push(entry(f.filename, &f.attrs));
                    }
                }
                Err(SftpError::Status(s)) if s.status_code == StatusCode::Eof => break,
                Err(e) => {
                    let _ = self.raw.close(handle.as_str()).await;
                    return Err(self.fail("list", path, e));
                }
            }
        }
        let _ = self.raw.close(handle).await;
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Creates a directory; with `parents`, also the missing ones above it, and an existing
    /// directory is fine.
    pub async fn mkdir(&self, path: &str, parents: bool) -> Result<(), Fail> {
        if !parents {
            return self
                .raw
                .mkdir(path, FileAttributes::empty())
                .await
                .map(|_| ())
                .map_err(|e| self.fail("create directory", path, e));
        }
        let mut prefix = String::new();
        if path.starts_with('/') {
            prefix.push('/');
        }
        for part in path.split('/').filter(|p| !p.is_empty()) {
            if !prefix.is_empty() && !prefix.ends_with('/') {
                prefix.push('/');
            }
            prefix.push_str(part);
            match self.lstat_opt(&prefix).await? {
                Some(a) if is_dir(&a) => continue,
                Some(a) if is_link(&a) && is_dir(&self.stat(&prefix).await?) => continue,
                Some(_) => {
                    return Err(Fail::new(
                        ErrorCode::InvalidArgument,
                        format!("{prefix} on {} exists and is not a directory", self.label),
                    ));
                }
                None => self
                    .raw
                    .mkdir(prefix.as_str(), FileAttributes::empty())
                    .await
                    .map(|_| ())
                    .map_err(|e| self.fail("create directory", &prefix, e))?,
            }
        }
        Ok(())
    }

    /// Removes a file, or a directory (with `recursive`, everything in it; symlinks are removed,
    /// never followed).
    pub async fn remove(&self, path: &str, recursive: bool) -> Result<u64, Fail> {
        let Some(attrs) = self.lstat_opt(path).await? else {
            return Err(Fail::new(
                ErrorCode::NotFound,
                format!("{path} does not exist on {}", self.label),
            ));
        };
        if !is_dir(&attrs) {
            self.raw
                .remove(path)
                .await
                .map_err(|e| self.fail("remove", path, e))?;
            return Ok(1);
        }
        if !recursive {
            return self.raw.rmdir(path).await.map(|_| 1).map_err(|e| match e {
                SftpError::Status(s) if s.status_code == StatusCode::Failure => Fail::new(
                    ErrorCode::InvalidArgument,
                    format!(
                        "{path} on {} is a directory that is not empty: remove it with recursive",
                        self.label
                    ),
                ),
                e => self.fail("remove", path, e),
            });
        }
        // Depth first, without recursion in async code: a stack of directories to empty.
        let mut removed = 0;
        let mut stack = vec![(path.to_string(), false)];
        while let Some((dir, listed)) = stack.pop() {
            if listed {
                self.raw
                    .rmdir(dir.as_str())
                    .await
                    .map_err(|e| self.fail("remove", &dir, e))?;
                removed += 1;
                continue;
            }
            stack.push((dir.clone(), true));
            for e in self.list(&dir).await? {
                let child = join(&dir, &e.name);
                if e.kind == EntryKind::Dir {
                    stack.push((child, false));
                } else {
                    self.raw
                        .remove(child.as_str())
                        .await
                        .map_err(|e| self.fail("remove", &child, e))?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    /// Renames `from` to `to`, replacing `to` atomically where the server supports it
    /// (OpenSSH's posix-rename); otherwise plain SFTP rename, which refuses an existing `to`.
    pub async fn rename(&self, from: &str, to: &str) -> Result<(), Fail> {
        if self.posix_rename {
            let mut data = Vec::with_capacity(8 + from.len() + to.len());
            for s in [from, to] {
                data.extend_from_slice(&(s.len() as u32).to_be_bytes());
                data.extend_from_slice(s.as_bytes());
            }
            return match self
                .raw
                .extended("posix-rename@openssh.com", data)
                .await
                .map_err(|e| self.fail("rename", from, e))?
            {
                Packet::Status(s) if s.status_code == StatusCode::Ok => Ok(()),
                Packet::Status(s) => Err(self.fail("rename", from, SftpError::Status(s))),
                _ => Err(Fail::new(
                    ErrorCode::Ssh,
                    format!("{} sent an unexpected reply to rename", self.label),
                )),
            };
        }
        self.raw
            .rename(from, to)
            .await
            .map(|_| ())
            .map_err(|e| self.fail("rename", from, e))
    }

    /// Sets permission bits (and owner, when given and allowed).
    pub async fn set_attrs(
        &self,
        path: &str,
        mode: Option<u32>,
        owner: Option<(u32, u32)>,
    ) -> Result<(), Fail> {
        let mut a = FileAttributes::empty();
        a.permissions = mode.map(|m| m & 0o7777);
        if let Some((uid, gid)) = owner {
            a.uid = Some(uid);
            a.gid = Some(gid);
        }
        self.raw
            .setstat(path, a)
            .await
            .map(|_| ())
            .map_err(|e| self.fail("change attributes of", path, e))
    }

    /// Opens a file for reading.
    pub async fn open_read(&self, path: &str) -> Result<String, Fail> {
        self.raw
            .open(path, OpenFlags::READ, FileAttributes::empty())
            .await
            .map(|h| h.handle)
            .map_err(|e| self.fail("open", path, e))
    }

    /// Creates a new file that must not exist yet (`O_EXCL`), with `mode`.
    pub async fn create_new(&self, path: &str, mode: u32) -> Result<String, Fail> {
        let mut a = FileAttributes::empty();
        a.permissions = Some(mode & 0o7777);
        self.raw
            .open(
                path,
                OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::EXCLUDE,
                a,
            )
            .await
            .map(|h| h.handle)
            .map_err(|e| self.fail("create", path, e))
    }

    /// Reads a whole file of at most `cap` bytes.
    pub async fn read_all(&self, path: &str, cap: u64) -> Result<Vec<u8>, Fail> {
        let attrs = self.stat(path).await?;
        if is_dir(&attrs) {
            return Err(Fail::new(
                ErrorCode::InvalidArgument,
                format!("{path} on {} is a directory", self.label),
            ));
        }
        let size = attrs.size.unwrap_or(0);
        if size > cap {
            return Err(Fail::new(
                ErrorCode::TooLarge,
                format!(
                    "{path} on {} is {size} bytes, more than the {cap}-byte limit: read a line range, or download it with ssh_sftp",
                    self.label
                ),
            ));
        }
        let handle = self.open_read(path).await?;
        let mut out = Vec::with_capacity(size as usize);
        loop {
            match self
                .raw
                .read(handle.as_str(), out.len() as u64, CHUNK)
                .await
            {
                Ok(d) if d.data.is_empty() => break,
                Ok(d) => {
                    out.extend_from_slice(&d.data);
                    if out.len() as u64 > cap {
                        let _ = self.raw.close(handle.as_str()).await;
                        return Err(Fail::new(
                            ErrorCode::TooLarge,
                            format!(
                                "{path} on {} grew past the {cap}-byte limit while it was read",
                                self.label
                            ),
                        ));
                    }
                }
                Err(SftpError::Status(s)) if s.status_code == StatusCode::Eof => break,
                Err(e) => {
                    let _ = self.raw.close(handle.as_str()).await;
                    return Err(self.fail("read", path, e));
                }
            }
        }
        let _ = self.raw.close(handle).await;
        Ok(out)
    }

    /// Writes `data` at offset 0 of an open handle, `WINDOW` requests in flight.
    pub async fn write_handle(&self, handle: &str, path: &str, data: &[u8]) -> Result<(), Fail> {
        let mut off = 0usize;
        let mut inflight = tokio::task::JoinSet::new();
        while off < data.len() || !inflight.is_empty() {
            while off < data.len() && inflight.len() < WINDOW {
                let end = (off + CHUNK as usize).min(data.len());
                let raw = self.raw.clone();
                let (h, chunk) = (handle.to_string(), data[off..end].to_vec());
                let at = off as u64;
                inflight.spawn(async move { raw.write(h, at, chunk).await });
                off = end;
            }
            if let Some(r) = inflight.join_next().await {
                r.map_err(Fail::internal)?
                    .map_err(|e| self.fail("write", path, e))?;
            }
        }
        Ok(())
    }

    /// Closes a handle, reporting a failure (a close can be where a full disk shows).
    pub async fn close(&self, handle: String, path: &str) -> Result<(), Fail> {
        self.raw
            .close(handle)
            .await
            .map(|_| ())
            .map_err(|e| self.fail("close", path, e))
    }
}

/// The maximum path length we accept from a client.
const MAX_PATH: usize = 4096;

/// Checks a remote path given by a client.
pub fn check_remote_path(path: &str) -> Result<(), Fail> {
    if path.is_empty() {
        return Err(Fail::new(
            ErrorCode::InvalidArgument,
            "the remote path is empty",
        ));
    }
    if path.len() > MAX_PATH || path.contains('\0') {
        return Err(Fail::new(
            ErrorCode::InvalidArgument,
            "the remote path is too long or contains a NUL byte",
        ));
    }
    Ok(())
}

/// A fresh hidden name beside `base` for a file being written (`.base.sshkeep-<12 hex>`); the
/// finished file is renamed over `base`.
pub fn temp_file_name(base: &str) -> String {
    format!(
        ".{base}.sshkeep-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// `dir/name` without doubling the slash.
pub fn join(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// The directory part of a remote path (`.` for a bare name).
pub fn parent(path: &str) -> &str {
    match path.trim_end_matches('/').rfind('/') {
        Some(0) => "/",
        Some(i) => &path[..i],
        None => ".",
    }
}

/// The last part of a remote path.
pub fn base_name(path: &str) -> &str {
    let t = path.trim_end_matches('/');
    t.rsplit('/').next().unwrap_or(t)
}

const S_IFMT: u32 = 0o170000;

/// A directory (the crate's own flag tests confuse types that share bits).
pub fn is_dir(a: &FileAttributes) -> bool {
    a.permissions.unwrap_or(0) & S_IFMT == 0o040000
}

/// A regular file.
pub fn is_file(a: &FileAttributes) -> bool {
    a.permissions.unwrap_or(0) & S_IFMT == 0o100000
}

/// A symbolic link.
pub fn is_link(a: &FileAttributes) -> bool {
    a.permissions.unwrap_or(0) & S_IFMT == 0o120000
}

/// A directory entry from SFTP attributes.
pub fn entry(name: String, a: &FileAttributes) -> RemoteEntry {
    let kind = if is_dir(a) {
        EntryKind::Dir
    } else if is_link(a) {
        EntryKind::Symlink
    } else if is_file(a) {
        EntryKind::File
    } else {
        EntryKind::Other
    };
    RemoteEntry {
        name,
        kind,
        size: a.size.unwrap_or(0),
        mode: a.permissions.unwrap_or(0) & 0o7777,
        uid: a.uid,
        gid: a.gid,
        mtime: a.mtime,
    }
}

/// An SFTP error as a failure naming the server and path.
pub fn fail_on(label: &str, what: &str, path: &str, e: SftpError) -> Fail {
    match e {
        SftpError::Status(s) => {
            let (code, why) = match s.status_code {
                StatusCode::NoSuchFile => (ErrorCode::NotFound, "no such file or directory"),
                StatusCode::PermissionDenied => (ErrorCode::PermissionDenied, "permission denied"),
                StatusCode::OpUnsupported => (ErrorCode::Ssh, "the server does not support this"),
                _ => (ErrorCode::Ssh, "the server refused"),
            };
            let detail = if s.error_message.is_empty() || s.error_message.eq_ignore_ascii_case(why)
            {
                String::new()
            } else {
                format!(" ({})", s.error_message)
            };
            Fail::new(
                code,
                format!("cannot {what} {path} on {label}: {why}{detail}"),
            )
        }
        SftpError::Timeout => Fail::new(
            ErrorCode::Unreachable,
            format!("cannot {what} {path} on {label}: the server did not answer in time"),
        ),
        e => Fail::new(
            ErrorCode::Ssh,
            format!("cannot {what} {path} on {label}: {e}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_path_parts() {
        assert_eq!(parent("/srv/a/b.txt"), "/srv/a");
        assert_eq!(parent("/b.txt"), "/");
        assert_eq!(parent("b.txt"), ".");
        assert_eq!(base_name("/srv/a/"), "a");
        assert_eq!(join("/srv/", "x"), "/srv/x");
        assert_eq!(join("/srv", "x"), "/srv/x");
        assert!(check_remote_path("a\0b").is_err());
    }
}
