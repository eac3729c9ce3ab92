//! A client's terminal attached to a shell: output frames out, keystrokes and resizes in.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use interprocess::local_socket::tokio::Stream;
use tokio::sync::broadcast::error::RecvError;

use super::output::Out;
use super::{Shells, resize};
use crate::broker::core::fail::Fail;
use crate::broker::core::{Core, Peer};
use crate::frame::{read_frame, write_frame};
use crate::protocol::{OutputStream, Request, Response};

/// Serves an attached terminal until the shell ends or the client detaches or hangs up.
pub async fn attach(
    broker: &Arc<Core>,
    shells: &Shells,
    peer: &Peer,
    stream: &Stream,
    shell_id: &str,
    close_on_detach: bool,
) -> Result<(), Fail> {
    let shell = shells.get(shell_id)?;
    let mut raw = shell.out(|o| o.raw.subscribe());
    let redraw = shell.out(|o| o.redraw());
    shell.facts(|f| f.attached += 1);
    let mut tx = stream;
    let mut rx = stream;
    let data = |b: &[u8]| Response::Output {
        stream: OutputStream::Stdout,
        data: B64.encode(b),
    };
    let mut detached = false;
    async {
        if write_frame(&mut tx, &Response::Shell(shell.info())).await.is_err()
            || write_frame(&mut tx, &data(&redraw)).await.is_err()
        {
            return;
        }
        if shell.is_over() {
            let _ = write_frame(&mut tx, &exit(shell.info().exit_code)).await;
            return;
        }
        // Ends true when tmux was detached (the viewer detaches with it), false otherwise.
        let output = async {
            loop {
                match raw.recv().await {
                    Ok(Out::Data(d)) => {
                        if write_frame(&mut tx, &data(&d)).await.is_err() {
                            return false;
                        }
                    }
                    Ok(Out::End(code)) => {
                        let _ = write_frame(&mut tx, &exit(code)).await;
                        return false;
                    }
                    Ok(Out::Detached) => {
                        let _ = write_frame(&mut tx, &Response::Detached { shell_id: shell.id.clone() }).await;
                        return true;
                    }
                    Err(RecvError::Lagged(_)) => {
                        // Too slow a reader: show the current screen instead of what was missed.
                        let r = shell.out(|o| o.redraw());
                        if write_frame(&mut tx, &data(&r)).await.is_err() {
                            return false;
                        }
                    }
                    Err(RecvError::Closed) => return false,
                }
            }
        };
        let input = async {
            loop {
                match read_frame::<Request, _>(&mut rx).await {
                    Ok(Request::AttachInput { data }) => {
                        if let Ok(bytes) = B64.decode(data) {
                            let _ = shell.type_bytes(super::recording::Typist::Person, bytes);
                        }
                    }
                    Ok(Request::AttachResize { cols, rows }) => {
                        let _ = resize(shells, &shell.id, cols, rows);
                    }
                    Ok(Request::AttachDetach) => return true,
                    Ok(_) => {}
                    Err(_) => return false,
                }
            }
        };
        tokio::select! {
            d = output => detached = d,
            asked = input => {
                detached = asked;
                if asked {
                    let _ = write_frame(&mut tx, &Response::Detached { shell_id: shell.id.clone() }).await;
                }
            }
        }
    }
    .await;
    shell.facts(|f| f.attached = f.attached.saturating_sub(1));
    if close_on_detach && !detached && !shell.is_over() {
        let _ = super::close(broker, shells, peer, &shell.id).await;
    }
    Ok(())
}

fn exit(code: Option<u32>) -> Response {
    Response::Exit {
        status: code.map(|c| c as i32).unwrap_or(0),
        exit_code: code,
        signal: None,
        note: None,
    }
}
