//! Start-up and shut-down of the broker process: the single-instance lock, the database and
//! vault, the background tasks, and the socket's accept loop.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use anyhow::{Context, Result, bail};
use sshkeep_vault::Vault;

use super::core::{Core, auto_lock, listener};
use super::manage::vault as vault_ops;
use super::requests::App;
use super::requests::connection as client_conn;
use super::{agent, commands, forwards, shells};
use crate::db::Db;
use crate::paths::Paths;

/// Client connections served at once; more are refused with a reply that says so (each holds
/// descriptors and buffers, and a local process must not be able to take them all).
const MAX_CLIENTS: usize = 512;

/// How the broker was started.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Print `ready` on stdout once the socket accepts connections (used by clients that start
    /// the broker in the background, so they wait on an event, not a guess).
    pub notify_ready: bool,
}

/// Runs the broker until it is told to stop (request or SIGTERM/SIGINT).
pub async fn run(paths: Paths, opts: RunOptions) -> Result<()> {
    for failure in crate::system::harden_process() {
        tracing::warn!("hardening incomplete: {failure}");
    }
    paths.ensure()?;
    let lock_path = paths.broker_lock();
    let lock = File::options()
        .mode(0o600)
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("cannot open {}", lock_path.display()))?;
    if lock.try_lock().is_err() {
        bail!(
            "another broker is already running for {} (it holds {})",
            paths.state.display(),
            lock_path.display()
        );
    }

    if Vault::any_trace(&paths.vault_dir()) {
        Db::check_present(&paths.database(), &paths.vault_dir())?;
    }
    let db = Db::open(&paths.database())?;
    let vault = if Vault::exists(&paths.vault_dir()) {
        Some(Vault::open(&paths.vault_dir())?)
    } else {
        None
    };
    let broker = Core::new(paths.clone(), db, vault)?;
    let app = App::new(broker.clone());
    app.start_approvals();
    vault_ops::auto_unlock(&broker).await;
    commands::recover(&broker);
    shells::recover(&broker, &app.shells);
    // Forwards outlive the broker: the ones open when the last one stopped listen again.
    forwards::restore(&broker, &app.forwards);
    tokio::spawn(retention(broker.clone()));
    tokio::spawn(auto_lock::run(broker.clone()));

    let listener = listener::bind(&paths.socket())?;
    tokio::spawn(agent::serve(broker.clone(), paths.agent_socket()));
    tracing::info!(socket = %paths.socket().display(), pid = std::process::id(), "broker ready");
    if opts.notify_ready {
        let mut out = std::io::stdout();
        // After this line nothing is written to stdout: the starting client stops reading.
        let _ = writeln!(out, "ready").and_then(|_| out.flush());
    }

    let own_uid = crate::system::current_uid();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut backoff = listener::AcceptBackoff::default();
    let clients = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_CLIENTS));
    loop {
        tokio::select! {
            accepted = listener::accept(&listener, own_uid, true) => match accepted {
                Ok((stream, peer)) => {
                    backoff.ok();
                    match clients.clone().try_acquire_owned() {
                        Ok(slot) => {
                            let app = app.clone();
                            tokio::spawn(async move {
                                client_conn::serve(app, stream, peer).await;
                                drop(slot);
                            });
                        }
                        Err(_) => {
                            tokio::spawn(client_conn::refuse_busy(stream, MAX_CLIENTS));
                        }
                    }
                }
                Err(e) => backoff.failed("broker socket", &e).await,
            },
            _ = broker.shutdown_requested() => break,
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    tracing::info!("broker stopping");
    broker.set_stopping();
    // Keys ssh-add gave the agent socket are wiped, not left to the process's exit.
    broker.agent_added().remove_all();
    app.forwards.close_all();
    broker.sessions().close_all().await;
    // What running commands and shells printed last is still in open chunks: write it.
    broker.log_writer().sync().await;
    match broker.db() {
        Ok(db) => {
            if let Err(e) = db.checkpoint() {
                tracing::warn!("{e:#}: a copy of the database file alone may miss recent changes");
            }
        }
        Err(f) => tracing::warn!("cannot checkpoint the database: {}", f.message),
    }
    let _ = std::fs::remove_file(paths.socket());
    let _ = std::fs::remove_file(paths.agent_socket());
    drop(lock);
    Ok(())
}

/// Applies the retention settings at start and every ten minutes.
async fn retention(broker: std::sync::Arc<Core>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(600));
    loop {
        tick.tick().await;
        let settings = broker.settings();
        let cutoff = crate::db::now_ms()
            - (settings.get(crate::settings::Key::LogMaxAgeDays) as i64).saturating_mul(86_400_000);
        let max_total = settings.get(crate::settings::Key::LogMaxTotalBytes);
        let swept = match broker.db() {
            Ok(mut db) => db.sweep(cutoff, max_total),
            Err(_) => return,
        };
        match swept {
            Ok(s) if s.commands_removed + s.outputs_removed > 0 => tracing::info!(
                commands_removed = s.commands_removed,
                outputs_removed = s.outputs_removed,
                "retention sweep"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!("retention sweep failed: {e:#}"),
        }
    }
}
