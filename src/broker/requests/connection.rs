//! One client connection: the hello, then requests until the client hangs up.

use std::sync::Arc;

use interprocess::local_socket::tokio::Stream;
use tokio::io::AsyncWrite;

use super::App;
use crate::broker::commands::{self, exec};
use crate::broker::core::fail::Fail;
use crate::broker::core::{Core, Peer};
use crate::broker::fleet::{audit as fleet_audit, bulk, bulk_conn};
use crate::broker::manage::{
    conns as conn_ops, keys as key_ops, sessions as command_ops, vault as vault_ops,
};
use crate::broker::{forwards, rotation, sftp, shells};
use crate::frame::{FrameError, read_frame, write_frame};
use crate::protocol::{ErrorCode, PROTOCOL_VERSION, Request, Response};

/// Answers a connection past the broker's client limit and closes it.
pub async fn refuse_busy(stream: Stream, limit: usize) {
    let mut tx = &stream;
    let reply = Response::error(
        ErrorCode::TooLarge,
        format!(
            "the broker is serving its limit of {limit} clients at once; try again when some have finished"
        ),
    );
    let _ = write_frame(&mut tx, &reply).await;
}

/// Serves one connection. Malformed frames get an error reply; only an oversized frame (after
/// which the stream cannot be resynchronised) or a hang-up ends the connection.
pub async fn serve(app: Arc<App>, stream: Stream, peer: Peer) {
    let broker = &app.core;
    // `&Stream` reads and writes; requests and replies alternate, so one stream serves both.
    let mut rx = &stream;
    let mut tx = &stream;
    let mut greeted = false;
    loop {
        let req: Request = match read_frame(&mut rx).await {
            Ok(r) => r,
            Err(FrameError::Closed) => return,
            Err(FrameError::Malformed(why)) => {
                let reply =
                    Response::error(ErrorCode::BadRequest, format!("malformed request: {why}"));
                if write_frame(&mut tx, &reply).await.is_err() {
                    return;
                }
                continue;
            }
            Err(e @ (FrameError::TooLarge(_) | FrameError::Busy)) => {
                let _ = write_frame(
                    &mut tx,
                    &Response::error(ErrorCode::TooLarge, e.to_string()),
                )
                .await;
                return;
            }
            Err(FrameError::Io(_)) => return,
        };
        let reply = match (greeted, req) {
            (false, Request::Hello { version, .. }) if version == PROTOCOL_VERSION => {
                greeted = true;
                Response::Hello {
                    version: PROTOCOL_VERSION,
                    broker_version: env!("CARGO_PKG_VERSION").into(),
                    pid: std::process::id(),
                }
            }
            (false, Request::Hello { version, .. }) => Response::error(
                ErrorCode::ProtocolMismatch,
                format!(
                    "this broker speaks protocol {PROTOCOL_VERSION} and the client speaks {version}: \
                     stop the old broker with `sshkeep broker stop` (the next command starts the matching one)"
                ),
            ),
            (false, _) => {
                Response::error(ErrorCode::BadRequest, "the first request must be a hello")
            }
            (
                true,
                Request::Exec {
                    target,
                    key,
                    command,
                    stdin,
                    pty,
                },
            ) => {
                let spec = exec::ExecSpec {
                    target: &target,
                    key: key.as_deref(),
                    command: &command,
                    stdin,
                    pty,
                };
                match exec::run(broker, &peer, spec, &stream).await {
                    Ok(()) => continue,
                    Err(f) => f.into_response(),
                }
            }
            (true, Request::Sftp(req)) if req.progress => {
                match sftp_with_progress(broker, &peer, req, &mut tx).await {
                    Ok(r) => r,
                    Err(f) => f.into_response(),
                }
            }
            (
                true,
                Request::ShellAttach {
                    shell_id,
                    close_on_detach,
                },
            ) => match shells::attach(
                broker,
                &app.shells,
                &peer,
                &stream,
                &shell_id,
                close_on_detach,
            )
            .await
            {
                // The connection served a terminal; it ends with it.
                Ok(()) => return,
                Err(f) => f.into_response(),
            },
            (true, Request::Shutdown) => {
                let _ = write_frame(
                    &mut tx,
                    &Response::Ok {
                        message: "broker stopping".into(),
                    },
                )
                .await;
                broker.request_shutdown();
                // Held open until the process exits: the client waits for this connection to
                // close, so `broker stop` returns once the database is checkpointed.
                std::future::pending::<()>().await;
                return;
            }
            (true, req) => dispatch(&app, &peer, req)
                .await
                .unwrap_or_else(Fail::into_response),
        };
        if write_frame(&mut tx, &reply).await.is_err() {
            return;
        }
    }
}

async fn dispatch(app: &App, peer: &Peer, req: Request) -> Result<Response, Fail> {
    let broker = &app.core;
    match req {
        Request::Hello { .. } => Err(Fail::new(ErrorCode::BadRequest, "hello was already sent")),
        Request::Status => vault_ops::status(broker),
        Request::VaultInit {
            backend,
            passphrase,
        } => vault_ops::init(broker, peer, backend, passphrase).await,
        Request::Unlock { passphrase } => vault_ops::unlock(broker, peer, passphrase).await,
        Request::Lock => vault_ops::lock(broker, peer),
        Request::KeyAdd {
            name,
            private_key,
            passphrase,
        } => key_ops::add(broker, peer, &name, &private_key, passphrase.as_ref()),
        Request::KeyGenerate { name, key_type } => {
            key_ops::generate(broker, peer, &name, key_type).await
        }
        Request::KeyList => key_ops::list(broker),
        Request::KeyShow { name } => key_ops::show(broker, &name),
        Request::KeyRemove { name, force } => key_ops::remove(broker, peer, &name, force),
        Request::KeyLink { key, conn } => key_ops::link(broker, peer, &key, &conn),
        Request::KeyUnlink { key, conn } => key_ops::unlink(broker, peer, &key, &conn),
        Request::KeyAgent {
            name,
            offer,
            confirm,
            lifetime_secs,
        } => key_ops::agent_options(broker, peer, &name, offer, confirm, lifetime_secs),
        Request::AgentStatus => Ok(Response::AgentStatus {
            socket: broker.paths().agent_socket().display().to_string(),
            offered: broker
                .db()?
                .keys()
                .map_err(Fail::internal)?
                .into_iter()
                .filter(|k| {
                    k.agent.offer
                        && k.retired.is_none()
                        && k.agent.until.is_none_or(|u| u > crate::db::now())
                })
                .map(|k| k.name)
                .collect(),
        }),
        Request::KeyRotate {
            name,
            key_type,
            resume,
            dry_run,
        } => rotation::rotate(broker, peer, &name, key_type, resume, dry_run).await,
        Request::KeyDeploy { name, conn } => rotation::deploy(broker, peer, &name, &conn).await,
        Request::ConnSave(spec) => conn_ops::save(broker, peer, spec),
        Request::ConnList => conn_ops::list(broker),
        Request::ConnShow { name } => conn_ops::show(broker, &name),
        Request::ConnRemove { name } => conn_ops::remove(broker, peer, &name),
        Request::ConnTest { target, key } => {
            conn_ops::test(broker, peer, &target, key.as_deref()).await
        }
        Request::ConnTrust {
            name,
            fingerprint,
            replace,
        } => conn_ops::trust(broker, peer, &name, fingerprint, replace).await,
        Request::AuditList(filter) => Ok(Response::Audit {
            records: broker
                .db()?
                .audit_records(&filter)
                .map_err(Fail::internal)?,
        }),
        Request::AuditVerify => {
            let c = broker.verify_audit()?;
            Ok(Response::AuditVerified {
                records: c.records,
                first_broken: c.first_broken,
                reason: c.reason,
            })
        }
        Request::SessionOpen { target, key } => {
            command_ops::session_open(broker, peer, &target, key.as_deref()).await
        }
        Request::SessionList => Ok(command_ops::session_list(broker)),
        Request::SessionClose { session_id } => {
            command_ops::session_close(broker, &session_id).await
        }
        Request::Run(spec) => commands::start(broker, peer, spec).await,
        Request::CommandStatus { command_id } => commands::status(broker, &command_id),
        Request::CommandLogs(q) => commands::logs(broker, q).await,
        Request::CommandCancel { command_id } => commands::cancel(broker, peer, &command_id).await,
        Request::CommandList { state, conn, limit } => {
            commands::list(broker, state.as_deref(), conn.as_deref(), limit)
        }
        Request::Settings => Ok(command_ops::settings(broker)),
        Request::SettingSet { key, value } => command_ops::set_setting(broker, peer, &key, &value),
        Request::BulkExec(spec) => bulk::start(broker, peer, spec).await,
        Request::BulkStatus { bulk_id, target } => {
            bulk::status(broker, &bulk_id, target.as_deref())
        }
        Request::BulkLogs {
            bulk_id,
            target,
            query,
        } => bulk::logs(broker, &bulk_id, target.as_deref(), query).await,
        Request::BulkCancel { bulk_id, target } => {
            bulk::cancel(broker, peer, &bulk_id, target.as_deref()).await
        }
        Request::BulkConn {
            op,
            targets,
            concurrency,
        } => bulk_conn::run(broker, peer, op, &targets, concurrency).await,
        Request::FleetAudit {
            op,
            targets,
            concurrency,
        } => fleet_audit::run(broker, peer, op, targets, concurrency).await,
        Request::FleetAuditShow { audit_id } => fleet_audit::show(broker, &audit_id),
        Request::ClientList => conn_ops::clients(broker),
        Request::ClientAssign { client, conns } => {
            conn_ops::set_client(broker, peer, Some(&client), &conns)
        }
        Request::ClientRemove { conns } => conn_ops::set_client(broker, peer, None, &conns),
        Request::Sftp(req) => sftp::run(broker, peer, req, None).await,
        Request::File(req) => sftp::file(broker, peer, req).await,
        Request::ShellOpen(spec) => shells::open(broker, &app.shells, peer, spec).await,
        Request::ShellSend {
            shell_id,
            text,
            enter,
        } => shells::send_text(&app.shells, &shell_id, &text, enter),
        Request::ShellKey { shell_id, key } => shells::key(&app.shells, &shell_id, &key),
        Request::ShellRead {
            shell_id,
            cursor,
            screen,
            max_bytes,
        } => shells::read(&app.shells, &shell_id, cursor, screen, max_bytes),
        Request::ShellWait {
            shell_id,
            pattern,
            timeout_secs,
            cursor,
            screen,
        } => {
            shells::wait(
                &app.shells,
                &shell_id,
                &pattern,
                timeout_secs,
                cursor,
                screen,
            )
            .await
        }
        Request::ShellResize {
            shell_id,
            cols,
            rows,
        } => shells::resize(&app.shells, &shell_id, cols, rows),
        Request::ShellSignal { shell_id, signal } => {
            shells::signal(&app.shells, &shell_id, &signal).await
        }
        Request::ShellStatus { shell_id } => shells::status(&app.shells, &shell_id),
        Request::ShellList => Ok(Response::Shells {
            shells: app.shells.list(),
        }),
        Request::ShellClose { shell_id } => {
            shells::close(broker, &app.shells, peer, &shell_id).await
        }
        Request::ForwardOpen(spec) => forwards::open(broker, &app.forwards, peer, spec).await,
        Request::ForwardList => Ok(Response::Forwards {
            forwards: app.forwards.list(),
        }),
        Request::ForwardClose { forward_id } => {
            forwards::close(broker, &app.forwards, peer, &forward_id).await
        }
        Request::AttachInput { .. } | Request::AttachResize { .. } | Request::AttachDetach => {
            Err(Fail::new(
                ErrorCode::BadRequest,
                "attach input needs an attached shell (send shell_attach first)",
            ))
        }
        Request::ExecInput { .. } | Request::ExecStop => Err(Fail::new(
            ErrorCode::BadRequest,
            "exec input and stop belong to a running exec (send exec first)",
        )),
        Request::ShellAttach { .. } | Request::Exec { .. } | Request::Shutdown => Err(Fail::new(
            ErrorCode::Internal,
            "handled by the connection loop",
        )),
    }
}

/// An SFTP request that reports progress: at most five frames a second while it runs.
async fn sftp_with_progress<W: AsyncWrite + Unpin>(
    broker: &Arc<Core>,
    peer: &Peer,
    req: crate::protocol::SftpRequest,
    tx: &mut W,
) -> Result<Response, Fail> {
    let (ptx, mut prx) = tokio::sync::mpsc::unbounded_channel::<(u64, u64)>();
    let work = sftp::run(broker, peer, req, Some(ptx));
    tokio::pin!(work);
    let mut last = tokio::time::Instant::now();
    let mut latest = None;
    loop {
        tokio::select! {
            r = &mut work => return r,
            p = prx.recv() => {
                if let Some(p) = p { latest = Some(p); }
                if let Some((done, total)) = latest
                    && last.elapsed() >= std::time::Duration::from_millis(200)
                {
                    last = tokio::time::Instant::now();
                    latest = None;
                    // A client that went away does not stop the transfer midway.
                    let _ = send(tx, &Response::Progress { done, total }).await;
                }
            }
        }
    }
}

/// Writes one frame; a failure means the client hung up.
pub async fn send<W: AsyncWrite + Unpin>(tx: &mut W, r: &Response) -> bool {
    write_frame(tx, r).await.is_ok()
}
