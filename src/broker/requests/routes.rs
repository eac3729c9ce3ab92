//! Where each admitted request goes: one match over every request, to the feature (or
//! management operation) that answers it. Requests that stream frames of their own go through
//! [`streaming`]; the others get one reply.

use interprocess::local_socket::tokio::Stream;

use super::door::{Caller, Outcome};
use super::{App, approvals, person, streaming};
use crate::broker::commands::{self, exec};
use crate::broker::core::fail::Fail;
use crate::broker::fleet::{audit as fleet_audit, bulk, bulk_conn};
use crate::broker::manage::{
    audit, certs as cert_ops, conns as conn_ops, keys as key_ops, profiles, secrets as secret_ops,
    sessions, settings, tokens, vault as vault_ops,
};
use crate::broker::{agent, forwards, rotation, sftp, shells};
use crate::protocol::{ApprovalKind, ApprovalState, ErrorCode, Request, Response};

/// Routes an admitted request to the feature that answers it.
pub async fn route(app: &App, caller: &Caller, req: Request, stream: &Stream) -> Outcome {
    let broker = &app.core;
    let peer = &caller.peer;
    let answer = match req {
        // Requests that write frames of their own while they run.
        Request::Exec {
            target,
            key,
            command,
            stdin,
            pty,
            person,
        } => {
            let spec = exec::ExecSpec {
                target: &target,
                key: key.as_deref(),
                command: &command,
                stdin,
                pty,
            };
            let (peer, asks) = person::at_terminal(peer, person);
            let work = streaming::exec(broker, &peer, spec, stream);
            return person::serve(work, asks, stream).await;
        }
        Request::Sftp(req) => return streaming::sftp(broker, peer, req, stream).await,
        Request::FleetAudit {
            op,
            targets,
            concurrency,
            progress: true,
        } => return streaming::fleet_audit(broker, peer, op, targets, concurrency, stream).await,
        Request::ShellAttach {
            shell_id,
            close_on_detach,
        } => {
            return streaming::attach(app, peer, &shell_id, close_on_detach, stream).await;
        }
        Request::Shutdown => return streaming::shutdown(broker, stream).await,
        // Requests with one reply.
        Request::Hello { .. } => Err(Fail::new(ErrorCode::BadRequest, "hello was already sent")),
        Request::Status => vault_ops::status(broker).map(|r| match r {
            Response::Status(mut info) => {
                info.profile = caller.profile.as_deref().map(profiles::info);
                Response::Status(info)
            }
            other => other,
        }),
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
            forward,
            only_to,
        } => key_ops::agent_options(
            broker,
            peer,
            &name,
            key_ops::AgentChange {
                offer,
                confirm,
                lifetime_secs,
                forward,
                only_to,
            },
        ),
        Request::KeyAddFromAgent {
            name,
            socket,
            fingerprint,
        } => key_ops::add_from_agent(broker, peer, &name, &socket, fingerprint.as_deref()).await,
        Request::AgentStatus => agent::status(broker),
        Request::KeyRotate {
            name,
            key_type,
            resume,
            dry_run,
        } => rotation::rotate(broker, peer, &name, key_type, resume, dry_run).await,
        Request::KeyDeploy { name, conn } => rotation::deploy(broker, peer, &name, &conn).await,
        // The user's own link of a stored password allows it for that server.
        Request::ConnSave(spec) => match caller.profile {
            None => secret_ops::allow_for_user(broker, &spec),
            Some(_) => secret_ops::check_for_profile(broker, &spec),
        }
        .and_then(|()| conn_ops::save(broker, peer, spec)),
        Request::SecretAdd {
            name,
            password,
            hosts,
        } => secret_ops::add(broker, peer, &name, &password, &hosts),
        Request::SecretList => secret_ops::list(broker),
        Request::SecretRemove { name } => secret_ops::remove(broker, peer, &name),
        Request::KeyCertAdd { name, certificate } => {
            cert_ops::add(broker, peer, &name, &certificate)
        }
        Request::KeyCertRemove { name } => cert_ops::remove(broker, peer, &name),
        Request::KeyCertSign {
            ca,
            key,
            principals,
            validity_secs,
        } => cert_ops::sign(broker, peer, &ca, &key, &principals, validity_secs).await,
        Request::ConnList => conn_ops::list(broker),
        Request::ConnShow { name } => conn_ops::show(broker, &name),
        Request::ConnRemove { name } => conn_ops::remove(broker, peer, &name),
        Request::ConnTest {
            target,
            key,
            person,
        } => {
            let (peer, asks) = person::at_terminal(peer, person);
            let work = conn_ops::test(broker, &peer, &target, key.as_deref());
            person::serve(work, asks, stream).await
        }
        Request::ConnTrust {
            name,
            fingerprint,
            replace,
        } => conn_ops::trust(broker, peer, &name, fingerprint, replace).await,
        Request::AuditList(filter) => audit::list(broker, &filter),
        Request::AuditVerify => audit::verify(broker),
        Request::SessionOpen {
            target,
            key,
            person,
        } => {
            let (peer, asks) = person::at_terminal(peer, person);
            let work = sessions::session_open(broker, &peer, &target, key.as_deref());
            person::serve(work, asks, stream).await
        }
        Request::LoginAnswer { .. } | Request::LoginCancel => Err(Fail::new(
            ErrorCode::BadRequest,
            "no login question is waiting for an answer",
        )),
        Request::SessionList => Ok(sessions::session_list(broker)),
        Request::SessionClose { session_id } => sessions::session_close(broker, &session_id).await,
        Request::Run(spec) => commands::start(broker, peer, spec).await,
        Request::CommandStatus { command_id } => match unstarted(app, &command_id) {
            Some(a) => Ok(approvals::command_status(a)),
            None => commands::status(broker, &command_id),
        },
        Request::CommandLogs(q) => match unstarted(app, &q.command_id) {
            Some(a) => Err(Fail::new(
                ErrorCode::InvalidArgument,
                format!(
                    "command {} never started ({}): it has no output",
                    a.id, a.state
                ),
            )),
            None => commands::logs(broker, q).await,
        },
        Request::CommandCancel { command_id } => match unstarted(app, &command_id) {
            Some(a) if a.state == ApprovalState::Pending => {
                approvals::withdraw(app, caller, &command_id)
            }
            _ => commands::cancel(broker, peer, &command_id).await,
        },
        Request::CommandList { state, conn, limit } => {
            commands::list(broker, state.as_deref(), conn.as_deref(), limit)
        }
        Request::Settings => Ok(settings::settings(broker)),
        Request::SettingSet { key, value } => settings::set_setting(broker, peer, &key, &value),
        Request::BulkExec(spec) => bulk::start(broker, peer, spec).await,
        Request::BulkStatus {
            bulk_id,
            target,
            wait_ms,
        } => match unstarted(app, &bulk_id) {
            Some(a) => Ok(approvals::bulk_status(a)),
            None => match wait_ms {
                Some(ms) => bulk::wait(broker, &bulk_id, target.as_deref(), ms)
                    .await
                    .and_then(|()| bulk::status(broker, &bulk_id, target.as_deref())),
                None => bulk::status(broker, &bulk_id, target.as_deref()),
            },
        },
        Request::BulkLogs {
            bulk_id,
            target,
            query,
        } => bulk::logs(broker, &bulk_id, target.as_deref(), query).await,
        Request::BulkCancel { bulk_id, target } => match unstarted(app, &bulk_id) {
            Some(a) if a.state == ApprovalState::Pending => {
                approvals::withdraw(app, caller, &bulk_id)
            }
            _ => bulk::cancel(broker, peer, &bulk_id, target.as_deref()).await,
        },
        Request::BulkConn {
            op,
            targets,
            concurrency,
        } => bulk_conn::run(broker, peer, op, &targets, concurrency).await,
        Request::FleetAudit {
            op,
            targets,
            concurrency,
            progress: false,
        } => fleet_audit::run(broker, peer, op, targets, concurrency, None).await,
        Request::FleetAuditShow { audit_id } => fleet_audit::show(broker, &audit_id),
        Request::ClientList => conn_ops::clients(broker),
        Request::ClientAssign { client, conns } => {
            conn_ops::set_client(broker, peer, Some(&client), &conns)
        }
        Request::ClientRemove { conns } => conn_ops::set_client(broker, peer, None, &conns),
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
        Request::ProfileList => profiles::list(broker),
        Request::ProfileShow { name } => profiles::show(broker, &name),
        Request::ProfileChange { change, presence } => {
            profiles::change(broker, peer, change, presence).await
        }
        Request::Approvals { all } => approvals::list(app, all),
        Request::McpTokenCreate {
            name,
            profile,
            presence,
        } => tokens::create(broker, peer, name, profile, presence).await,
        Request::McpTokenList => tokens::list(broker),
        Request::McpTokenRevoke { name, presence } => {
            tokens::revoke(broker, peer, name, presence).await
        }
        Request::McpTokenCheck { token } => tokens::check(broker, peer, token),
        Request::ApprovalDecide {
            id,
            approve,
            for_minutes,
            reason,
            presence,
        } => approvals::decide(app, peer, &id, approve, for_minutes, reason, presence).await,
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
        Request::SftpStop => Err(Fail::new(
            ErrorCode::BadRequest,
            "sftp stop belongs to a running transfer sent with progress",
        )),
    };
    Outcome::of(answer)
}

/// The approval of a command or bulk run that has not started (it waits, or it never will).
fn unstarted(app: &App, id: &str) -> Option<crate::db::ApprovalRow> {
    let a = approvals::find(&app.core, id)?;
    let started = match a.kind {
        ApprovalKind::Command => app.core.db().ok()?.command(id).ok()?.is_some(),
        ApprovalKind::Bulk => app.core.db().ok()?.bulk(id).ok()?.is_some(),
    };
    (!started).then_some(a)
}
