//! The client side of the broker socket: connect (starting the broker when none runs), hello,
//! then typed calls: each request names the reply it expects ([`replies`]), so callers get that
//! reply's payload or an error, and never match replies themselves.

mod replies;

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, anyhow, bail};
use interprocess::local_socket::tokio::Stream;
use interprocess::local_socket::traits::tokio::Stream as _;
use interprocess::local_socket::{GenericFilePath, ToFsName};

use crate::frame::{read_frame, write_frame};
use crate::paths::Paths;
use crate::protocol::{
    ErrorCode, ErrorNext, LoginPrompt, PROTOCOL_VERSION, Request, Response, SecretString,
};
pub use replies::{
    AgentStatus, AttachFrame, AuditCheck, BulkLogs, BulkStarted, Done, Entries, ExecFrame,
    FromReply, Hello, McpTokenCreated, McpTokenValid, Started, UnexpectedReply, expect,
};

/// A connection to the broker, past the hello.
pub struct Client {
    stream: Stream,
}

/// A broker error reply, kept whole so callers can branch on the code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct BrokerError {
    pub code: ErrorCode,
    pub message: String,
    /// The next step as data (the MCP adapter words it as a tool call).
    pub next: Option<ErrorNext>,
}

async fn dial(paths: &Paths) -> std::io::Result<Stream> {
    let name = paths.socket().to_fs_name::<GenericFilePath>()?;
    Stream::connect(name).await
}

impl Client {
    /// Connects to the running broker, or returns `None` when none is running. The connection
    /// works under `profile` (`None`: the user's own CLI), named in its hello.
    pub async fn connect_existing(paths: &Paths, profile: Option<&str>) -> Result<Option<Self>> {
        match dial(paths).await {
            Ok(s) => Ok(Some(Self::greet(s, profile).await?)),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(e).with_context(|| {
                format!(
                    "cannot connect to the broker at {}",
                    paths.socket().display()
                )
            }),
        }
    }

    /// Connects, starting a broker in the background first when none is running; see
    /// [`Client::connect_existing`] for `profile`.
    pub async fn connect(paths: &Paths, profile: Option<&str>) -> Result<Self> {
        if let Some(c) = Self::connect_existing(paths, profile).await? {
            return Ok(c);
        }
        let p = paths.clone();
        tokio::task::spawn_blocking(move || start_broker(&p)).await??;
        Self::connect_existing(paths, profile)
            .await?
            .ok_or_else(|| {
                anyhow!(
                    "the broker started but its socket {} does not answer",
                    paths.socket().display()
                )
            })
    }

    async fn greet(stream: Stream, profile: Option<&str>) -> Result<Self> {
        let mut c = Self { stream };
        let hello = Request::Hello {
            version: PROTOCOL_VERSION,
            client: format!("sshkeep {}", env!("CARGO_PKG_VERSION")),
            profile: profile.map(str::to_string),
        };
        let _: Hello = c.call(&hello).await?;
        Ok(c)
    }

    /// The socket, for a client that reads and writes at once (an attached terminal).
    pub fn stream(&self) -> &Stream {
        &self.stream
    }

    /// Sends a request without waiting (for streaming replies).
    pub async fn send(&mut self, req: &Request) -> Result<()> {
        write_frame(&mut &self.stream, req)
            .await
            .context("cannot send to the broker")
    }

    /// Reads the next reply.
    pub async fn recv(&mut self) -> Result<Response> {
        read_frame(&mut &self.stream)
            .await
            .context("lost the connection to the broker")
    }

    /// One request, one reply. If sending fails, a reply already waiting (the broker's refusal
    /// of this client, say) is still read and returned.
    async fn exchange(&mut self, req: &Request) -> Result<Response> {
        let sent = self.send(req).await;
        match self.recv().await {
            Ok(r) => Ok(r),
            Err(e) => Err(sent.err().unwrap_or(e)),
        }
    }

    /// One request and its reply's payload: `client.call::<Vec<ConnInfo>>(&Request::ConnList)`.
    /// An error reply becomes a [`BrokerError`], a reply of another kind an [`UnexpectedReply`].
    pub async fn call<R: FromReply>(&mut self, req: &Request) -> Result<R> {
        expect(self.exchange(req).await?)
    }

    /// A request made with a person at this terminal (`person` set), whose login may ask them
    /// questions: each [`Response::LoginPrompt`] before the reply is answered by `answer` (which
    /// reads the terminal; its failure declines), then the reply's payload comes as with
    /// [`Client::call`].
    pub async fn call_at_terminal<R: FromReply>(
        &mut self,
        req: &Request,
        answer: fn(&LoginPrompt) -> Result<Vec<SecretString>>,
    ) -> Result<R> {
        self.send(req).await?;
        loop {
            match self.recv().await? {
                Response::LoginPrompt(p) => {
                    // The broker's reply while the question is still on the screen: it gave up
                    // waiting (no answer in time) or the login ended.
                    let withdrawn = tokio::select! {
                        reply = answer_prompt(p, answer) => Err(reply),
                        r = self.recv() => Ok(Some(r)),
                        _ = tokio::signal::ctrl_c() => Ok(None),
                    };
                    match withdrawn {
                        Err(reply) => self.send(&reply).await?,
                        Ok(Some(r)) => {
                            eprintln!(
                                "\nsshkeep: the login question was withdrawn (no answer in time, or the login ended)"
                            );
                            return expect(r?);
                        }
                        Ok(None) => {
                            eprintln!();
                            anyhow::bail!(
                                "the login question was declined at the terminal (ctrl-c)"
                            );
                        }
                    }
                }
                r => return expect(r),
            }
        }
    }

    /// A request whose reply is preceded by progress frames (a transfer): `progress` sees each
    /// (bytes done, bytes in all) as it comes.
    pub async fn call_with_progress<R: FromReply>(
        &mut self,
        req: &Request,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<R> {
        self.send(req).await?;
        loop {
            match self.recv().await? {
                Response::Progress { done, total } => progress(done, total),
                r => return expect(r),
            }
        }
    }
}

/// The frame that answers `prompt`: the answers `answer` reads (on a thread of its own, as
/// terminal reads block), or a refusal when it cannot. The terminal's state is put back when
/// this ends or is dropped (ctrl-c, the question withdrawn), even while that thread still waits
/// for a line; such a thread does not keep the process from exiting.
pub async fn answer_prompt(
    prompt: LoginPrompt,
    answer: fn(&LoginPrompt) -> Result<Vec<SecretString>>,
) -> Request {
    let _tty = crate::system::TtyState::save();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = tx.send(answer(&prompt));
    });
    match rx.await {
        Ok(Ok(answers)) => Request::LoginAnswer { answers },
        _ => Request::LoginCancel,
    }
}

/// Starts `sshkeep broker --notify-ready` in the background and waits for its `ready` line.
/// A start lock keeps two clients from starting two brokers; the loser finds the winner's socket.
fn start_broker(paths: &Paths) -> Result<()> {
    paths.ensure()?;
    let lock = File::options()
        .mode(0o600)
        .create(true)
        .truncate(false)
        .write(true)
        .open(paths.start_lock())
        .with_context(|| format!("cannot open {}", paths.start_lock().display()))?;
    lock.lock().context("cannot take the broker start lock")?;
    if std::os::unix::net::UnixStream::connect(paths.socket()).is_ok() {
        return Ok(());
    }
    let log = File::options()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(paths.broker_log())
        .with_context(|| {
            format!(
                "cannot open the broker log {}",
                paths.broker_log().display()
            )
        })?;
    let exe = std::env::current_exe().context("cannot find the sshkeep executable")?;
    let mut child = Command::new(exe)
        .args(["broker", "--notify-ready"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .process_group(0)
        .spawn()
        .context("cannot start the broker")?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow!("no pipe from the broker"))?;
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .context("cannot read from the starting broker")?;
    if line.trim() == "ready" {
        return Ok(());
    }
    let status = child.wait().ok();
    let tail = std::fs::read_to_string(paths.broker_log())
        .map(|s| {
            s.lines()
                .rev()
                .take(5)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default();
    bail!(
        "the broker did not start ({}); its log {} ends with:\n{tail}",
        status
            .map(|s| s.to_string())
            .unwrap_or_else(|| "unknown status".into()),
        paths.broker_log().display()
    )
}
