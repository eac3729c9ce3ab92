//! The only module with `unsafe`: process hardening and identity queries through libc, and
//! the wiping of freed memory ([`wipe`]). Each libc call is a plain syscall wrapper with no
//! pointers kept past the call.
#![allow(unsafe_code)]

pub mod wipe;

/// The real uid of this process.
pub fn current_uid() -> u32 {
    // SAFETY: getuid cannot fail and touches no memory.
    unsafe { libc::getuid() }
}

/// Turns off core dumps and makes the process non-dumpable (which also refuses ptrace attach
/// from other processes of the same user). Returns what could not be done, for a warning.
pub fn harden_process() -> Vec<String> {
    let mut failures = Vec::new();
    let zero = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: setrlimit reads the struct we pass by reference for the duration of the call.
    if unsafe { libc::setrlimit(libc::RLIMIT_CORE, &zero) } != 0 {
        failures.push(format!(
            "cannot disable core dumps: {}",
            std::io::Error::last_os_error()
        ));
    }
    // Descriptors up to the hard limit: every client and session holds some, and running out
    // makes accept() fail for everyone.
    let mut nofile = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read or write the struct we pass, for the call only.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut nofile) == 0
            && nofile.rlim_cur < nofile.rlim_max
        {
            nofile.rlim_cur = nofile.rlim_max.min(1 << 20);
            if libc::setrlimit(libc::RLIMIT_NOFILE, &nofile) != 0 {
                failures.push(format!(
                    "cannot raise the open-file limit: {}",
                    std::io::Error::last_os_error()
                ));
            }
        }
    }
    #[cfg(target_os = "linux")]
    {
        // SAFETY: prctl(PR_SET_DUMPABLE, 0) takes plain integers.
        if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
            failures.push(format!(
                "cannot make the process non-dumpable: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    failures
}

/// Closes every descriptor above stderr that this process inherited. The broker outlives the
/// client that started it: a descriptor it kept by accident (a lock the client's parent held,
/// say, as `flock FILE cmd` leaves open) would stay held for the broker's whole life. Call at
/// start, before anything of the broker's own is opened.
pub fn close_inherited_fds() {
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
        .filter(|fd| *fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: close() on a descriptor number; nothing of this process uses these yet (the
        // one the directory listing used is already closed, and closing it again is harmless).
        unsafe {
            libc::close(fd);
        }
    }
}

/// Asks the kernel to keep the pages holding `len` bytes at `addr` in RAM (out of swap).
/// Fails when RLIMIT_MEMLOCK is too small; the memory stays usable either way.
pub fn keep_in_ram(addr: usize, len: usize) -> std::io::Result<()> {
    // SAFETY: mlock only changes the paging of the range (rounded to pages by the kernel); it
    // reads and writes no memory, and the caller's object outlives the call.
    if unsafe { libc::mlock(addr as *const libc::c_void, len) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Restores the default action of SIGPIPE (the Rust runtime ignores it), so that printing into
/// a closed pipe (`sshkeep logs ID | head -1`) ends the process quietly, as it does for every
/// other Unix tool, instead of failing each write. Only for CLI commands whose output may go to
/// a pipe: the broker and the MCP adapter keep SIGPIPE ignored and handle EPIPE as an error.
pub fn default_sigpipe() {
    // SAFETY: signal() with SIG_DFL installs no handler and touches no memory of ours.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Whether this process is currently dumpable (for tests of [`harden_process`]).
#[cfg(target_os = "linux")]
pub fn is_dumpable() -> bool {
    // SAFETY: prctl(PR_GET_DUMPABLE) takes plain integers.
    unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) == 1 }
}

/// The size of the terminal on `fd` as (columns, rows).
pub fn terminal_size(fd: i32) -> Option<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize into the struct we own for the duration of the call.
    let r = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) };
    (r == 0 && ws.ws_col > 0 && ws.ws_row > 0).then_some((ws.ws_col, ws.ws_row))
}

/// A terminal in raw mode until this guard drops (then its previous mode is restored).
pub struct RawMode {
    fd: i32,
    saved: libc::termios,
}

impl RawMode {
    /// Puts the terminal on `fd` into raw mode.
    pub fn enable(fd: i32) -> std::io::Result<Self> {
        // SAFETY: a zeroed termios is a valid value for tcgetattr to fill.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: tcgetattr fills the struct we pass by reference.
        if unsafe { libc::tcgetattr(fd, &mut saved) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut raw = saved;
        // SAFETY: cfmakeraw edits the struct we pass by reference.
        unsafe { libc::cfmakeraw(&mut raw) };
        // SAFETY: tcsetattr reads the struct we pass by reference.
        if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &raw) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Self { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: tcsetattr reads the struct we own.
        unsafe { libc::tcsetattr(self.fd, libc::TCSANOW, &self.saved) };
    }
}

/// The state of the controlling terminal (`/dev/tty`), put back when this guard drops: however
/// a question at the terminal ends (answered, ctrl-c, withdrawn), echo is not left off, even
/// while a thread that reads the answer is still blocked.
pub struct TtyState {
    tty: std::fs::File,
    saved: libc::termios,
}

impl TtyState {
    /// The terminal's state now; `None` without a controlling terminal.
    pub fn save() -> Option<Self> {
        use std::os::fd::AsRawFd;
        let tty = std::fs::File::options()
            .read(true)
            .write(true)
            .open("/dev/tty")
            .ok()?;
        // SAFETY: a zeroed termios is a valid value for tcgetattr to fill.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: tcgetattr fills the struct we pass by reference.
        (unsafe { libc::tcgetattr(tty.as_raw_fd(), &mut saved) } == 0)
            .then_some(Self { tty, saved })
    }

    /// Turns echo off (lines are still read whole) until this guard drops.
    pub fn echo_off(&self) -> std::io::Result<()> {
        use std::os::fd::AsRawFd;
        let mut t = self.saved;
        t.c_lflag &= !(libc::ECHO | libc::ECHOE | libc::ECHOK | libc::ECHONL);
        t.c_lflag |= libc::ICANON;
        // SAFETY: tcsetattr reads the struct we pass by reference.
        if unsafe { libc::tcsetattr(self.tty.as_raw_fd(), libc::TCSANOW, &t) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}

impl Drop for TtyState {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd;
        // SAFETY: tcsetattr reads the struct we own.
        unsafe { libc::tcsetattr(self.tty.as_raw_fd(), libc::TCSANOW, &self.saved) };
    }
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(target_os = "linux")]
    fn hardening_makes_the_process_non_dumpable() {
        let failures = super::harden_process();
        assert!(failures.is_empty(), "{failures:?}");
        assert!(!super::is_dumpable());
    }
}
