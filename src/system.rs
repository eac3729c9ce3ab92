//! The only module with `unsafe`: process hardening and identity queries through libc.
//! Each call is a plain syscall wrapper with no pointers kept past the call.
#![allow(unsafe_code)]

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

/// Whether this process is currently dumpable (for tests of [`harden_process`]).
#[cfg(target_os = "linux")]
pub fn is_dumpable() -> bool {
    // SAFETY: prctl(PR_GET_DUMPABLE) takes plain integers.
    unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) == 1 }
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
