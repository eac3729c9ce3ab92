//! `conn test`: a login taken step by step (reachability, host key, key, authentication) with
//! how far it got and how long each step took. Failures are part of the report, not errors.

use std::sync::Arc;

use super::{audit_refusal, creds, known_hosts, pin_if_new, resolve, tunnel_for};
use crate::broker::core::fail::Fail;
use crate::broker::core::{Core, Peer};
use crate::protocol::{ErrorCode, HostKeyReport, NextStep, TestReport};
use crate::ssh;

/// Tests a login step by step: reachability, host key, login with the linked key, timings. Each failure is
/// reported in the result, not as an error, so the user sees how far it got.
pub async fn run(
    broker: &Arc<Core>,
    peer: &Peer,
    target: &str,
    key: Option<&str>,
) -> Result<TestReport, Fail> {
    let r = resolve(broker, target, key)?;
    let ep = &r.endpoint;
    let mut report = TestReport {
        host: ep.host.clone(),
        port: ep.port,
        user: ep.user.clone(),
        reachable: false,
        connect_ms: None,
        host_key: None,
        key: r.key.clone(),
        authenticated: false,
        login_ms: None,
        error: None,
        error_code: None,
        next: None,
    };
    // A locked vault or missing key still lets the test check reachability and the host key.
    let creds = match creds::unseal(broker, &r) {
        Ok(c) => Some(c),
        Err(f) if f.code == ErrorCode::NoKey && r.key.is_none() => {
            let f = Fail::then(
                ErrorCode::NoKey,
                "no key (or stored password) to log in with",
                NextStep::LinkKey {
                    conn: target.to_string(),
                },
            );
            report.error = Some(f.message);
            report.error_code = Some(f.code);
            report.next = f.next;
            None
        }
        Err(f) => {
            report.error = Some(f.message);
            report.error_code = Some(f.code);
            report.next = f.next;
            None
        }
    };
    let pin = broker.db()?.pin(&ep.host, ep.port)?;
    let started = std::time::Instant::now();
    // Through the jump hosts, as a login would go (a hop that fails is this test's answer).
    let (via, _hop) = match tunnel_for(broker, peer, &r).await {
        Ok(Some((t, h))) => (Some(t), Some(h)),
        Ok(None) => (None, None),
        Err(f) => {
            report.error = Some(f.message);
            report.error_code = Some(f.code);
            return Ok(report);
        }
    };
    let (login, connected) = ssh::connect(ep, pin, known_hosts(), via).await;
    report.reachable = login.connect_ms.is_some();
    report.connect_ms = login.connect_ms;
    report.host_key = login.seen.as_ref().map(|s| HostKeyReport {
        algorithm: s.algorithm.clone(),
        fingerprint: s.fingerprint.clone(),
        status: s.status_word().into(),
    });
    if let Err(e) = connected {
        audit_refusal(broker, peer, ep, login.seen.as_ref())?;
        report.error = Some(e.message);
        report.error_code = Some(e.code);
        report.next = e.next;
        return Ok(report);
    }
    let (Some(mut handle), Some(creds)) = (login.handle, creds) else {
        return Ok(report);
    };
    creds::audit_use(broker, peer, ep, &creds, "conn test")?;
    let asked_before = peer.person.as_ref().map_or(0, |p| p.answered());
    let result = ssh::authenticate(ep, &mut handle, creds, peer.person.as_ref()).await;
    super::audit_person(broker, peer, ep, asked_before, result.is_ok())?;
    match result {
        Ok(()) => {
            report.authenticated = true;
            report.login_ms = Some((started.elapsed().as_secs_f64() * 100_000.0).round() / 100.0);
            if let Some(seen) = &login.seen
                && pin_if_new(broker, peer, ep, seen)?
                && let Some(hk) = report.host_key.as_mut()
            {
                hk.status = "pinned_now".into();
            }
        }
        Err(e) => {
            report.error = Some(e.message);
            report.error_code = Some(e.code);
            report.next = e.next;
        }
    }
    let _ = handle
        .disconnect(russh::Disconnect::ByApplication, "test done", "en")
        .await;
    Ok(report)
}
