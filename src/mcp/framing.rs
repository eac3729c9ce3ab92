//! The adapter's stdio, one JSON-RPC message per line, with the replies JSON-RPC requires for
//! lines that are not messages at all. rmcp's stdio transport drops an unparseable line without
//! a word, and the agent then waits for its own timeout; here such a line is answered with a
//! `-32700` parse error (and JSON that is not a request object with `-32600`), and every other
//! line goes on to rmcp unchanged. One task owns stdout, so replies never interleave.

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

/// The JSON-RPC error reply for a line that is not a message, if it is not one.
pub fn refusal(line: &str) -> Option<Value> {
    let (code, message) = match serde_json::from_str::<Value>(line) {
        Err(e) => (-32700, format!("Parse error: {e}")),
        Ok(Value::Object(_)) => return None,
        Ok(_) => (
            -32600,
            "Invalid Request: a message is one JSON object per line".to_string(),
        ),
    };
    Some(json!({"jsonrpc": "2.0", "id": null, "error": {"code": code, "message": message}}))
}

/// The reader and writer rmcp serves on, and the task that pumps the real stdin and stdout
/// through them (it ends when both sides are done).
pub fn stdio() -> (
    (
        impl AsyncRead + Send + Unpin + 'static,
        impl AsyncWrite + Send + Unpin + 'static,
    ),
    tokio::task::JoinHandle<()>,
) {
    let (ours, theirs) = tokio::io::duplex(1 << 16);
    let (their_read, their_write) = tokio::io::split(theirs);
    let (our_read, mut our_write) = tokio::io::split(ours);
    let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(64);

    // stdin -> rmcp, answering lines that are not messages.
    let refusals = out_tx.clone();
    let input = tokio::spawn(async move {
        let mut lines = BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if line.trim().is_empty() {
                continue;
            }
            match refusal(&line) {
                Some(reply) => {
                    let mut bytes = reply.to_string().into_bytes();
                    bytes.push(b'\n');
                    if refusals.send(bytes).await.is_err() {
                        break;
                    }
                }
                None => {
                    let sent = async {
                        our_write.write_all(line.as_bytes()).await?;
                        our_write.write_all(b"\n").await?;
                        our_write.flush().await
                    };
                    if sent.await.is_err() {
                        break;
                    }
                }
            }
        }
        // End of stdin: rmcp sees the end of its input and stops.
        let _ = our_write.shutdown().await;
    });

    // rmcp -> stdout.
    let output = tokio::spawn(async move {
        let mut lines = BufReader::new(our_read).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let mut bytes = line.into_bytes();
            bytes.push(b'\n');
            if out_tx.send(bytes).await.is_err() {
                break;
            }
        }
    });

    let writer = tokio::spawn(async move {
        let mut stdout = tokio::io::stdout();
        while let Some(bytes) = out_rx.recv().await {
            if stdout.write_all(&bytes).await.is_err() || stdout.flush().await.is_err() {
                break;
            }
        }
    });

    let pump = tokio::spawn(async move {
        let _ = output.await;
        input.abort();
        let _ = writer.await;
    });
    ((their_read, their_write), pump)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_that_are_not_messages_get_json_rpc_errors() {
        assert_eq!(
            refusal("{not json").expect("refused")["error"]["code"],
            -32700
        );
        assert_eq!(refusal("[1,2]").expect("refused")["error"]["code"], -32600);
        assert!(refusal(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#).is_none());
    }
}
