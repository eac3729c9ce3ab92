//! The floor under a warm `sshkeep exec`: one russh connection, opened once, then a channel per
//! command (open, exec, wait for the exit status and the close), timed in-process. What a warm
//! exec costs above this is sshkeep's own (the CLI process, the local socket, the broker).
//!
//! `cargo run --release --example exec_floor -- HOST PORT USER KEYFILE RUNS COMMAND`
//! prints the median and the minimum in milliseconds. Used by `bench/run.sh`.

use std::sync::Arc;
use std::time::Instant;

use russh::ChannelMsg;
use russh::client::{self, AuthResult};
use russh::keys::{PrivateKeyWithHashAlg, PublicKeyOrCertificate, load_secret_key};

/// Accepts any host key: a benchmark on loopback against a server the script just started.
struct AnyHost;

impl client::Handler for AnyHost {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        _key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [host, port, user, keyfile, runs, command] = args.as_slice() else {
        return Err("usage: exec_floor HOST PORT USER KEYFILE RUNS COMMAND".into());
    };
    let config = Arc::new(client::Config {
        nodelay: true,
        ..Default::default()
    });
    let mut handle =
        client::connect(config, (host.as_str(), port.parse::<u16>()?), AnyHost).await?;
    let key = Arc::new(load_secret_key(keyfile, None)?);
    let auth = handle
        .authenticate_publickey(user.clone(), PrivateKeyWithHashAlg::new(key, None))
        .await?;
    if !matches!(auth, AuthResult::Success) {
        return Err("the server refused the key".into());
    }
    let mut times = Vec::new();
    for _ in 0..runs.parse::<usize>()? {
        let t = Instant::now();
        let mut channel = handle.channel_open_session().await?;
        channel.exec(true, command.as_bytes()).await?;
        channel.eof().await?;
        let mut status = None;
        while let Some(msg) = channel.wait().await {
            if let ChannelMsg::ExitStatus { exit_status } = msg {
                status = Some(exit_status);
            }
        }
        if status != Some(0) {
            return Err(format!("the command ended with {status:?}").into());
        }
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "median {:.2} ms, min {:.2} ms over {} runs",
        times[times.len() / 2],
        times[0],
        times.len()
    );
    Ok(())
}
