//! Asynchronous commands: `run`, `status ID`, `logs`, `cancel`, `ps`.

use std::io::Read;
use std::time::Duration;

use super::{Ctx, choices, output};
use crate::client::Started;
use crate::protocol::{
    CommandInfo, LineStream, LogPage, LogQuery, Request, RunOptions, RunSpec, SecretString,
};
use anyhow::{Context, Result, bail};
use clap::Args;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// A saved connection, user@host[:port], a Host of ~/.ssh/config, or a session id.
    target: String,
    /// Run on the server independently of the SSH connection: survives reconnects and broker restarts.
    #[arg(long)]
    detach: bool,
    /// Kill the command after this many seconds.
    #[arg(long)]
    timeout: Option<u64>,
    /// Working directory on the server.
    #[arg(long)]
    cwd: Option<String>,
    /// Environment variable for the command (repeatable).
    #[arg(long = "env", value_name = "NAME=VALUE")]
    env: Vec<String>,
    /// Feed this program's standard input to the command.
    #[arg(long)]
    stdin: bool,
    /// Allocate a terminal.
    #[arg(long)]
    pty: bool,
    /// Log in with this key instead of the linked one.
    #[arg(long)]
    key: Option<String>,
    /// Several commands: run in order, stopping at the first failure (repeatable; instead of -- CMD).
    #[arg(long = "then", value_name = "CMD")]
    then: Vec<String>,
    /// The command (its words are joined with spaces, as with ssh).
    #[arg(last = true)]
    command: Vec<String>,
}

fn looks_like_uuid(s: &str) -> bool {
    s.len() == 36 && s.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

pub async fn run(ctx: &Ctx, a: RunArgs) -> Result<u8> {
    let mut commands = Vec::new();
    if !a.command.is_empty() {
        commands.push(a.command.join(" "));
    }
    commands.extend(a.then);
    if commands.is_empty() {
        bail!("give the command after --, or with --then CMD");
    }
    let mut env = std::collections::BTreeMap::new();
    for e in &a.env {
        let (k, v) = e
            .split_once('=')
            .with_context(|| format!("--env takes NAME=VALUE, not {e:?}"))?;
        env.insert(k.to_string(), v.to_string());
    }
    let stdin = if a.stdin {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("cannot read standard input")?;
        Some(SecretString::new(s))
    } else {
        None
    };
    let (target, session_id) = if looks_like_uuid(&a.target) {
        (None, Some(a.target))
    } else {
        (Some(a.target), None)
    };
    let spec = RunSpec {
        target,
        session_id,
        key: a.key,
        commands,
        detach: a.detach,
        stdin,
        options: RunOptions {
            cwd: a.cwd,
            env,
            pty: a.pty,
            timeout_secs: a.timeout,
        },
    };
    let Started {
        command_id,
        session_id,
        state,
        approval,
    } = ctx.client().await?.call(&Request::Run(spec)).await?;
    if ctx.json {
        output::json(
            &serde_json::json!({ "command_id": command_id, "session_id": session_id, "state": state, "approval": approval }),
        )?;
    } else {
        println!("{command_id}");
        if let Some(why) = approval {
            eprintln!("waiting for approval: {why}");
        }
    }
    Ok(0)
}

/// `sshkeep status ID`.
pub async fn status(ctx: &Ctx, id: String) -> Result<u8> {
    let c: CommandInfo = ctx
        .client()
        .await?
        .call(&Request::CommandStatus { command_id: id })
        .await?;
    if ctx.json {
        output::json(&c)?;
    } else {
        show(&c);
    }
    Ok(0)
}

fn ms_time(ms: Option<i64>) -> String {
    ms.map(|m| output::time(m / 1000))
        .unwrap_or_else(|| "-".into())
}

fn show(c: &CommandInfo) {
    println!("command    {}", c.command_id);
    println!("target     {}", c.target);
    println!("session    {}", output::opt(&c.session_id));
    for (i, cmd) in c.commands.iter().enumerate() {
        println!(
            "{}{cmd}",
            if i == 0 { "run        " } else { "then       " }
        );
    }
    println!("detached   {}", if c.detached { "yes" } else { "no" });
    println!("state      {}", c.state.as_str());
    let exit = match (c.exit_code, &c.signal) {
        (Some(code), _) => code.to_string(),
        (None, Some(sig)) => format!("signal {sig}"),
        _ => "-".into(),
    };
    println!("exit       {exit}");
    println!("started    {}", ms_time(c.started_ms));
    println!("ended      {}", ms_time(c.ended_ms));
    println!(
        "duration   {}",
        c.duration_ms
            .map(|d| format!("{:.3}s", d as f64 / 1000.0))
            .unwrap_or_else(|| "-".into())
    );
    println!(
        "stdout     {} bytes, {} lines",
        c.stdout.bytes, c.stdout.lines
    );
    println!(
        "stderr     {} bytes, {} lines",
        c.stderr.bytes, c.stderr.lines
    );
    if let Some(e) = &c.error {
        println!("\n{e}");
    }
}

/// The filters of `logs` and `bulk logs`, as flags; they become the protocol's [`LogQuery`].
#[derive(Args, Debug, Clone)]
pub struct LogFilterArgs {
    #[arg(long, value_enum)]
    stream: Option<choices::StreamFilter>,
    /// Only lines matching this regular expression.
    #[arg(long)]
    grep: Option<String>,
    /// --grep ignores case.
    #[arg(long, short = 'i', requires = "grep")]
    ignore_case: bool,
    /// The first N lines (of each target, for a bulk run).
    #[arg(long, conflicts_with = "tail")]
    head: Option<u64>,
    /// The last N lines (of each target, for a bulk run).
    #[arg(long)]
    tail: Option<u64>,
    #[arg(long)]
    from_line: Option<u64>,
    #[arg(long)]
    to_line: Option<u64>,
}

impl LogFilterArgs {
    /// The query for `command_id`'s output (empty for a bulk run: the broker fills in each
    /// target's command).
    pub fn query(self, command_id: String) -> LogQuery {
        LogQuery {
            command_id,
            stream: self.stream.map(Into::into),
            grep: self.grep,
            ignore_case: self.ignore_case,
            head: self.head,
            tail: self.tail,
            from_line: self.from_line,
            to_line: self.to_line,
            max_bytes: None,
            timestamps: false,
        }
    }
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    command_id: String,
    #[command(flatten)]
    filter: LogFilterArgs,
    /// Keep printing new lines until the command ends.
    #[arg(long, short)]
    follow: bool,
    /// Prefix each line with its number and stream.
    #[arg(long, short = 'n')]
    numbers: bool,
    /// Export as plain text: every line on standard output, in order, as `TIME STREAM TEXT`
    /// (TIME when its first byte arrived, UTC to the millisecond; `-` for lines stored before
    /// sshkeep kept times).
    #[arg(long, short = 't', conflicts_with = "numbers")]
    timestamps: bool,
}

pub async fn logs(ctx: &Ctx, a: LogsArgs) -> Result<u8> {
    let mut c = ctx.client().await?;
    let mut q = a.filter.query(a.command_id);
    q.timestamps = a.timestamps;
    let mut all = Vec::new();
    loop {
        let page: LogPage = c.call(&Request::CommandLogs(q.clone())).await?;
        let last = page.lines.last().map(|l| l.n);
        if ctx.json {
            all.extend(page.lines);
        } else {
            for l in &page.lines {
                if a.timestamps {
                    let at = l.at_ms.map(output::time_ms).unwrap_or_else(|| "-".into());
                    println!("{at} {:<7} {}", l.stream, l.text);
                } else if a.numbers {
                    println!("{:>6} {:<6} {}", l.n, l.stream, l.text);
                } else if l.stream != LineStream::Stdout {
                    // stderr, and the broker's own notes (stream `sshkeep`): standard output
                    // carries only what the command printed on its stdout.
                    eprintln!("{}", l.text);
                } else {
                    println!("{}", l.text);
                }
            }
        }
        // Page on through a cut reply; with --follow, poll for new lines until the command ends.
        if let Some(next) = page.next_from_line {
            q.from_line = Some(next);
            q.tail = None;
            continue;
        }
        if !a.follow || (page.state.is_final() && last.is_none_or(|n| n >= page.total_lines)) {
            break;
        }
        if let Some(n) = last {
            q.from_line = Some(n + 1);
        } else if q.tail.is_some() {
            q.from_line = Some(page.total_lines + 1);
        }
        q.tail = None;
        q.head = None;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    if ctx.json {
        output::json(&all)?;
    }
    if !a.follow {
        return Ok(0);
    }
    // Followed to its end: exit as the command did, like `exec`.
    let info: CommandInfo = c
        .call(&Request::CommandStatus {
            command_id: q.command_id,
        })
        .await?;
    Ok(follow_exit_code(&info))
}

/// The exit code of `logs --follow` for a command that ended: its own exit code, or 1 with the
/// reason on stderr when it has none (cancelled, timed out, connection lost).
fn follow_exit_code(c: &CommandInfo) -> u8 {
    match c.exit_code {
        Some(0) if c.state == crate::protocol::CommandState::Completed => 0,
        Some(code) if code > 0 => code.clamp(1, 255) as u8,
        _ => {
            eprintln!(
                "command {} {}{}",
                c.command_id,
                c.state.as_str(),
                c.error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            );
            1
        }
    }
}

pub async fn cancel(ctx: &Ctx, id: String) -> Result<u8> {
    let c: CommandInfo = ctx
        .client()
        .await?
        .call(&Request::CommandCancel { command_id: id })
        .await?;
    if ctx.json {
        output::json(&c)?;
    } else {
        println!("{} {}", c.command_id, c.state.as_str());
    }
    Ok(0)
}

#[derive(Args, Debug)]
pub struct PsArgs {
    /// Only commands in this state (queued, running, completed, failed, cancelled, timed_out, interrupted).
    #[arg(long)]
    state: Option<String>,
    /// Only commands on this connection.
    #[arg(long)]
    conn: Option<String>,
    #[arg(long, default_value_t = 50)]
    limit: u32,
}

pub async fn ps(ctx: &Ctx, a: PsArgs) -> Result<u8> {
    let req = Request::CommandList {
        state: a.state,
        conn: a.conn,
        limit: Some(a.limit),
    };
    let commands: Vec<CommandInfo> = ctx.client().await?.call(&req).await?;
    if ctx.json {
        output::json(&commands)?;
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = commands
        .iter()
        .map(|c| {
            vec![
                c.command_id.clone(),
                c.target.clone(),
                c.state.as_str().into(),
                c.exit_code
                    .map(|e| e.to_string())
                    .unwrap_or_else(|| "-".into()),
                ms_time(Some(c.created_ms)),
                c.commands.join(" && ").chars().take(60).collect(),
            ]
        })
        .collect();
    output::table(
        &["COMMAND", "TARGET", "STATE", "EXIT", "CREATED", "RUN"],
        &rows,
    );
    Ok(0)
}
