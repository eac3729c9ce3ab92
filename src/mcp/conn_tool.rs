//! `ssh_conn` and `ssh_client`.

use rmcp::model::CallToolResult;
use serde_json::json;

use super::Adapter;
use super::args::{ClientArgs, ClientOp, ConnArgs, ConnOp};
use super::reply::{agent_error, answer, bad_arg, done, fail, from_error, ok, problem_then};
use super::vocab::{Vocab, all};
use crate::client::Done;
use crate::forward_spec;
use crate::protocol::{
    ClientGroup, ConnInfo, ConnSpec, ForwardInfo, ForwardKind, HostKeyPolicy, Request, TestReport,
};

pub async fn conn(a: &Adapter, x: ConnArgs) -> CallToolResult {
    let req = match x.op {
        ConnOp::List => Request::ConnList,
        ConnOp::Show | ConnOp::Remove => {
            let Some(name) = x.connection_id else {
                return bad_arg("this op needs connectionId (see op=list)");
            };
            if x.op == ConnOp::Show {
                Request::ConnShow { name }
            } else {
                Request::ConnRemove { name }
            }
        }
        ConnOp::Trust => {
            let Some(name) = x.connection_id else {
                return bad_arg("op=trust needs connectionId");
            };
            let Some(fingerprint) = x.fingerprint else {
                return bad_arg(
                    "op=trust needs fingerprint: the SHA256 fingerprint checked out of band (ssh-keygen -lf on the server)",
                );
            };
            // A changed host key can mean an attack, and a prompt-injected agent could copy the
            // new fingerprint from the error: replacing a pin is the user's decision, made in a
            // terminal. Agents may only make a first pin.
            match a
                .call::<ConnInfo>(Request::ConnShow { name: name.clone() })
                .await
            {
                Ok(c) => {
                    if let Some(pinned) = c.pinned_host_key.filter(|p| *p != fingerprint) {
                        return fail(
                            "host_key_change_needs_user",
                            format!(
                                "{name} already has the pinned host key {pinned}; replacing it is the user's decision: \
                                 ask them to verify the new key and run `sshkeep conn trust {name} --fingerprint {fingerprint}` in a terminal"
                            ),
                        );
                    }
                }
                Err(e) => return from_error(e),
            }
            Request::ConnTrust {
                name,
                fingerprint: Some(fingerprint),
                replace: false,
            }
        }
        ConnOp::Forwards => Request::ForwardList,
        ConnOp::Unforward => {
            let Some(forward_id) = x.forward_id else {
                return bad_arg("op=unforward needs forwardId (see op=forwards)");
            };
            Request::ForwardClose { forward_id }
        }
        ConnOp::Forward => {
            let Some(target) = x.connection_id else {
                return bad_arg("op=forward needs connectionId");
            };
            let (kind, text) = match (x.local, x.remote, x.dynamic) {
                (Some(l), None, None) => (ForwardKind::Local, l),
                (None, Some(r), None) => (ForwardKind::Remote, r),
                (None, None, Some(d)) => (ForwardKind::Dynamic, d),
                _ => {
                    return bad_arg(
                        "op=forward needs exactly one of local (as ssh -L), remote (-R) or dynamic (-D)",
                    );
                }
            };
            // Binding where other machines can reach is the user's decision (`--allow-public`).
            match forward_spec::parse(kind, &text, target, x.key_name, false) {
                Ok(spec) => Request::ForwardOpen(spec),
                Err(e) => return bad_arg(e),
            }
        }
        ConnOp::Test => {
            let target = match (x.connection_id, x.host, x.username) {
                (Some(c), _, _) => c,
                (None, Some(h), Some(u)) => format!("{u}@{h}:{}", x.port.unwrap_or(22)),
                _ => {
                    return bad_arg(
                        "op=test needs connectionId, or host and username (with keyName)",
                    );
                }
            };
            Request::ConnTest {
                target,
                key: x.key_name,
                person: false,
            }
        }
        ConnOp::Save => {
            let (Some(name), Some(host), Some(user)) = (x.name, x.host, x.username) else {
                return bad_arg("op=save needs name, host and username (port defaults to 22)");
            };
            let policy = match x.host_key_policy.as_deref() {
                None => HostKeyPolicy::AcceptNew,
                Some(p) => match HostKeyPolicy::parse(p) {
                    Some(p) => p,
                    None => {
                        return bad_arg(format!(
                            "hostKeyPolicy must be accept-new or strict, not {p:?}"
                        ));
                    }
                },
            };
            Request::ConnSave(ConnSpec {
                jump: x.jump.unwrap_or_default(),
                connect_timeout: x.connect_timeout,
                forward_agent: false,
                password: x.password_secret,
                name,
                host,
                port: x.port.unwrap_or(22),
                user,
                key: x.key_name,
                client: x.client,
                host_key_policy: policy,
                keepalive_interval: x.keepalive_interval.unwrap_or(30),
                keepalive_max: x.keepalive_max.unwrap_or(3),
                idle_timeout: x.idle_timeout.unwrap_or(600),
                authorized_keys: x
                    .authorized_keys
                    .unwrap_or_else(crate::protocol::default_authorized_keys),
            })
        }
    };
    match x.op {
        ConnOp::List => answer(a.call::<Vec<ConnInfo>>(req).await, |conns| {
            ok(
                format!("{} saved connections", conns.len()),
                json!({ "connections": all(&conns) }),
            )
        }),
        ConnOp::Show | ConnOp::Save => answer(a.call::<ConnInfo>(req).await, |c| {
            ok(
                format!(
                    "Connection {} (id {}): {}@{}:{}, key {}",
                    c.spec.name,
                    c.id,
                    c.spec.user,
                    c.spec.host,
                    c.spec.port,
                    c.spec
                        .key
                        .as_deref()
                        .unwrap_or("none (link one with ssh_key op=link)")
                ),
                c.to_mcp(),
            )
        }),
        ConnOp::Test => answer(a.call::<TestReport>(req).await, |t| {
            let summary = match (&t.error, t.authenticated) {
                (_, true) => format!(
                    "{}@{}:{} reachable, host key {}, login ok",
                    t.user,
                    t.host,
                    t.port,
                    t.host_key
                        .as_ref()
                        .map(|h| format!("{} ({})", h.fingerprint, h.status))
                        .unwrap_or_default()
                ),
                (Some(e), false) => match &t.next {
                    Some(n) => format!("test failed: {}", problem_then(&n.problem, &n.step).0),
                    None => format!("test failed: {e}"),
                },
                (None, false) => "login not tried".into(),
            };
            let mut v = t.to_mcp();
            agent_error(&mut v, t.next.as_ref());
            ok(summary, v)
        }),
        ConnOp::Remove | ConnOp::Trust => answer(a.call::<Done>(req).await, done),
        ConnOp::Forward | ConnOp::Unforward => answer(a.call::<ForwardInfo>(req).await, |f| {
            let closed = x.op == ConnOp::Unforward;
            ok(
                format!(
                    "{} {}: {}",
                    if closed { "closed" } else { "forward" },
                    f.forward_id,
                    forward_spec::describe(&f)
                ),
                f.to_mcp(),
            )
        }),
        ConnOp::Forwards => answer(a.call::<Vec<ForwardInfo>>(req).await, |fs| {
            let summary = fs
                .iter()
                .map(|f| format!("{} {}", f.forward_id, forward_spec::describe(f)))
                .collect::<Vec<_>>()
                .join("; ");
            ok(
                if summary.is_empty() {
                    "no port forwards".into()
                } else {
                    summary
                },
                json!({ "forwards": all(&fs) }),
            )
        }),
    }
}

pub async fn client(a: &Adapter, x: ClientArgs) -> CallToolResult {
    let mut conns = x.connection_ids.unwrap_or_default();
    conns.extend(x.connection_id);
    let req = match x.op {
        ClientOp::List => Request::ClientList,
        ClientOp::Assign => {
            let Some(client) = x.client else {
                return bad_arg("op=assign needs client and connectionId(s)");
            };
            if conns.is_empty() {
                return bad_arg("op=assign needs connectionId or connectionIds");
            }
            Request::ClientAssign { client, conns }
        }
        ClientOp::Remove => {
            if conns.is_empty() {
                return bad_arg("op=remove needs connectionId or connectionIds");
            }
            Request::ClientRemove { conns }
        }
    };
    answer(a.call::<Vec<ClientGroup>>(req).await, |clients| {
        let summary = clients
            .iter()
            .map(|c| format!("{}: {}", c.name, c.connections.join(", ")))
            .collect::<Vec<_>>()
            .join("; ");
        let summary = if summary.is_empty() {
            "no client groups".into()
        } else {
            summary
        };
        ok(summary, json!({ "clients": clients }))
    })
}
