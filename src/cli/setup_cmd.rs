//! Fitting sshkeep into a machine: shell completions and the man page (generated from the
//! command definitions, never hand-written), and a systemd user unit for the broker.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result};
use clap::{CommandFactory, Subcommand};

use super::{Cli, Ctx};

#[derive(Subcommand, Debug)]
pub enum ServiceCmd {
    /// Write the systemd user unit `sshkeep.service` and start it (the broker then runs from
    /// login to logout instead of starting on the first command).
    Install {
        /// Only write the unit file; do not enable or start it.
        #[arg(long)]
        no_start: bool,
    },
    /// Stop and disable the unit and remove its file.
    Uninstall,
    /// Print the unit this machine would get.
    Show,
}

/// `sshkeep completion SHELL`: the completion script on stdout.
pub fn completion(shell: clap_complete::Shell) -> Result<u8> {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "sshkeep", &mut std::io::stdout());
    Ok(0)
}

/// `sshkeep man`: the man page (roff) on stdout.
pub fn man() -> Result<u8> {
    clap_mangen::Man::new(Cli::command())
        .render(&mut std::io::stdout())
        .context("cannot write the man page")?;
    Ok(0)
}

/// The unit's file: `$XDG_CONFIG_HOME/systemd/user/sshkeep.service` (default `~/.config`).
fn unit_path() -> Result<PathBuf> {
    let config = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(c) => PathBuf::from(c),
        None => PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?).join(".config"),
    };
    Ok(config.join("systemd/user/sshkeep.service"))
}

/// The unit for this executable. Environment that chooses where sshkeep keeps its state, or how
/// a passphrase vault unlocks, is carried over so the service's broker is the one the CLI finds.
fn unit_text() -> Result<String> {
    let exe = std::env::current_exe().context("cannot find the sshkeep executable")?;
    let exe = exe.display();
    let mut env = String::new();
    for var in ["SSHKEEP_HOME", "SSHKEEP_PASSPHRASE_FILE", "SSHKEEP_LOG"] {
        if let Some(v) = std::env::var_os(var).filter(|v| !v.is_empty()) {
            env.push_str(&format!(
                "Environment=\"{var}={}\"\n",
                v.to_string_lossy().replace('"', "\\\"")
            ));
        }
    }
    Ok(format!(
        "# Written by `sshkeep service install`; `sshkeep service uninstall` removes it.\n\
         [Unit]\n\
         Description=sshkeep broker: SSH keys encrypted at rest, every session owned by the broker\n\
         Documentation=man:sshkeep(1)\n\
         \n\
         [Service]\n\
         Type=exec\n\
         ExecStart={exe} broker\n\
         ExecStop={exe} broker stop\n\
         Restart=on-failure\n\
         {env}\
         # The broker holds decrypted keys: no core dumps, no privilege gain.\n\
         LimitCORE=0\n\
         NoNewPrivileges=yes\n\
         UMask=0077\n\
         \n\
         [Install]\n\
         WantedBy=default.target\n"
    ))
}

/// Runs `systemctl --user ARGS`; `false` when systemd's user manager cannot be reached.
fn systemctl(args: &[&str]) -> bool {
    Command::new("systemctl")
        .arg("--user")
        .args(args)
        .status()
        .is_ok_and(|s| s.success())
}

pub async fn service(_ctx: &Ctx, cmd: ServiceCmd) -> Result<u8> {
    match cmd {
        ServiceCmd::Show => {
            print!("{}", unit_text()?);
            Ok(0)
        }
        ServiceCmd::Install { no_start } => {
            let path = unit_path()?;
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
            std::fs::write(&path, unit_text()?)
                .with_context(|| format!("cannot write {}", path.display()))?;
            println!("wrote {}", path.display());
            if no_start {
                println!(
                    "start it with: systemctl --user daemon-reload && systemctl --user enable --now sshkeep.service"
                );
                return Ok(0);
            }
            if systemctl(&["daemon-reload"]) && systemctl(&["enable", "--now", "sshkeep.service"]) {
                println!("sshkeep.service is enabled and running");
                Ok(0)
            } else {
                eprintln!(
                    "systemd's user manager did not take it (no user session bus here?); once it runs:\n  \
                     systemctl --user daemon-reload && systemctl --user enable --now sshkeep.service\n\
                     Until then the CLI starts the broker on demand, as without the unit."
                );
                Ok(1)
            }
        }
        ServiceCmd::Uninstall => {
            let path = unit_path()?;
            let stopped = systemctl(&["disable", "--now", "sshkeep.service"]);
            match std::fs::remove_file(&path) {
                Ok(()) => println!("removed {}", path.display()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    println!("no unit at {}", path.display())
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot remove {}", path.display()));
                }
            }
            if stopped {
                let _ = systemctl(&["daemon-reload"]);
            }
            Ok(0)
        }
    }
}
