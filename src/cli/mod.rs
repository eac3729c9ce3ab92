//! The `sshkeep` command line. Every command but `broker` is a client of the broker.

mod agent_cmd;
mod approval_cmd;
mod audit_cmd;
mod broker_cmd;
mod bulk_cmd;
mod choices;
mod classify_cmd;
mod client_cmd;
mod config_cmd;
mod conn_cmd;
mod cp_cmd;
mod exec_cmd;
mod file_cmd;
mod forward_cmd;
mod import_cmd;
mod key_cmd;
mod mcp_cmd;
mod output;
mod profile_cmd;
mod prompt;
mod run_cmd;
mod secret_cmd;
mod session_cmd;
mod setup_cmd;
mod shell_cmd;
mod vault_cmd;

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use crate::client::Client;
use crate::paths::Paths;

/// Keep SSH keys encrypted in a broker that owns every session.
#[derive(Parser, Debug)]
#[command(name = "sshkeep", version, about, long_about = None)]
pub struct Cli {
    /// Print machine-readable JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    /// Work under this profile (what it allows, what waits for approval). Without it the CLI is
    /// the user's own; `sshkeep mcp` works under `agent` unless told otherwise.
    #[arg(long, global = true, env = "SSHKEEP_PROFILE")]
    profile: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the broker in the foreground (for systemd and tests), or `broker stop`.
    Broker(broker_cmd::BrokerArgs),
    /// Show the broker and vault state, or with an id, a command's state.
    Status {
        /// A command id.
        command_id: Option<String>,
    },
    /// Create the vault.
    #[command(subcommand)]
    Vault(vault_cmd::VaultCmd),
    /// Unlock the vault (prompts for the passphrase, or reads SSHKEEP_PASSPHRASE_FILE).
    Unlock,
    /// Drop every decrypted key from the broker's memory.
    Lock,
    /// Manage keys in the vault.
    #[command(subcommand)]
    Key(key_cmd::KeyCmd),
    /// Manage saved connections and host keys.
    #[command(subcommand)]
    Conn(conn_cmd::ConnCmd),
    /// Stored login passwords (sealed in the vault; never shown).
    #[command(subcommand)]
    Secret(secret_cmd::SecretCmd),
    /// Run a command on a server and stream its output; exits with the remote status.
    Exec(exec_cmd::ExecArgs),
    /// The broker's ssh-agent socket for OpenSSH, git and scp: `eval "$(sshkeep agent env)"`.
    #[command(subcommand)]
    Agent(agent_cmd::AgentCmd),
    /// Show or verify the audit log.
    Audit(audit_cmd::AuditArgs),
    /// Fleet work: run, check, open or close across many connections.
    #[command(subcommand)]
    Bulk(bulk_cmd::BulkCmd),
    /// Client (customer) groups of connections.
    #[command(subcommand)]
    Client(client_cmd::ClientCmd),
    /// Persistent sessions.
    #[command(subcommand)]
    Session(session_cmd::SessionCmd),
    /// Start a command; prints its id at once (see status, logs, cancel).
    Run(run_cmd::RunArgs),
    /// A command's output, with filters.
    Logs(run_cmd::LogsArgs),
    /// Stop a command and everything it started on the server.
    Cancel { command_id: String },
    /// List commands.
    Ps(run_cmd::PsArgs),
    /// Serve the Model Context Protocol for AI agents (a client of the broker): on stdio, or
    /// over HTTP with `--http ADDRESS:PORT` and bearer tokens (`sshkeep mcp token`).
    Mcp(mcp_cmd::McpArgs),
    /// An interactive shell on a server (raw terminal, resize, exit status), or --attach to
    /// one the broker holds, --list, --close.
    Shell(shell_cmd::ShellArgs),
    /// Copy files or directories to or from a server over SFTP: `cp ./dir web1:/srv/dir -r`.
    Cp(cp_cmd::CpArgs),
    /// Remote file-system operations over SFTP: ls, stat, mkdir, rm, mv, chmod.
    #[command(subcommand)]
    Sftp(cp_cmd::SftpCmd),
    /// Read or edit a remote text file over SFTP (atomic writes, exact replacements).
    #[command(subcommand)]
    File(file_cmd::FileCmd),
    /// Show the broker's settings, or change one.
    Config {
        #[command(subcommand)]
        action: Option<config_cmd::ConfigCmd>,
    },
    /// Port forwarding held by the broker: `forward web1 -L 5432:db:5432`, `-D 1080`, `list`,
    /// `close ID`.
    Forward(forward_cmd::ForwardArgs),
    /// Print a shell completion script: `source <(sshkeep completion bash)`.
    Completion {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `sshkeep man > ~/.local/share/man/man1/sshkeep.1`.
    Man,
    /// Run the broker as a systemd user service.
    #[command(subcommand)]
    Service(setup_cmd::ServiceCmd),
    /// How sshkeep judges a command line for a profile: its class (read-only, safe, destructive,
    /// privileged, opaque), the part that decided it, and what each built-in profile does.
    Classify(classify_cmd::ClassifyArgs),
    /// Profiles clients work under: list, show, create, set, remove.
    #[command(subcommand)]
    Profile(profile_cmd::ProfileCmd),
    /// Requests waiting for your approval (a client's profile said to ask you).
    Approvals(approval_cmd::ApprovalsArgs),
    /// Approve a waiting request and start it (you, at your terminal, with the vault passphrase).
    Approve(approval_cmd::ApproveArgs),
    /// Refuse a waiting request; nothing runs.
    Deny(approval_cmd::DenyArgs),
}

/// Entry point of the binary: prints errors with their causes and picks the exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let is_broker = matches!(&cli.command, Command::Broker(b) if b.action.is_none());
    if is_broker {
        crate::system::close_inherited_fds();
    }
    init_tracing(is_broker);
    if !is_broker && !matches!(cli.command, Command::Mcp(_)) {
        crate::system::default_sigpipe();
    }
    // The broker and the MCP adapter serve many things at once; every other command is one
    // conversation with the broker, on one thread (no worker threads to start, no CPU count to
    // read from cgroups): that is most of a short command's start-up.
    let serves = is_broker || matches!(cli.command, Command::Mcp(_));
    let mut builder = if serves {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    builder.enable_all();
    if is_broker {
        // Keys are decoded and used for signing on these threads: what deeper calls left on the
        // stack is overwritten whenever a thread goes idle or ends (see `system::wipe`).
        builder
            .thread_stack_size(crate::system::wipe::THREAD_STACK_BYTES)
            .on_thread_park(crate::system::wipe::scrub_if_touched)
            .on_thread_stop(crate::system::wipe::scrub_stack);
    }
    let runtime = match builder.build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(is_broker: bool) {
    let default = if is_broker { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("SSHKEEP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        // A failed log write (a full disk under the broker's log) is dropped: reporting it
        // goes through eprintln!, which panics when stderr cannot be written.
        .log_internal_errors(false)
        .try_init();
}

/// Shared by the subcommands: where things are, output mode, and a broker connection.
pub struct Ctx {
    pub paths: Paths,
    pub json: bool,
    /// The profile the CLI's connections work under (`None`: the user's own).
    pub profile: Option<String>,
}

impl Ctx {
    async fn client(&self) -> Result<Client> {
        Client::connect(&self.paths, self.profile.as_deref()).await
    }
}

async fn run(cli: Cli) -> Result<u8> {
    let ctx = Ctx {
        paths: Paths::from_env()?,
        json: cli.json,
        profile: cli.profile,
    };
    match cli.command {
        Command::Broker(a) => broker_cmd::run(&ctx, a).await,
        Command::Status { command_id: None } => vault_cmd::status(&ctx).await,
        Command::Status {
            command_id: Some(id),
        } => run_cmd::status(&ctx, id).await,
        Command::Vault(c) => vault_cmd::run(&ctx, c).await,
        Command::Unlock => vault_cmd::unlock(&ctx).await,
        Command::Lock => vault_cmd::lock(&ctx).await,
        Command::Key(c) => key_cmd::run(&ctx, c).await,
        Command::Conn(c) => conn_cmd::run(&ctx, c).await,
        Command::Secret(c) => secret_cmd::run(&ctx, c).await,
        Command::Exec(a) => exec_cmd::run(&ctx, a).await,
        Command::Audit(a) => audit_cmd::run(&ctx, a).await,
        Command::Agent(c) => agent_cmd::run(&ctx, c).await,
        Command::Session(c) => session_cmd::run(&ctx, c).await,
        Command::Client(c) => client_cmd::run(&ctx, c).await,
        Command::Bulk(c) => bulk_cmd::run(&ctx, c).await,
        Command::Run(a) => run_cmd::run(&ctx, a).await,
        Command::Logs(a) => run_cmd::logs(&ctx, a).await,
        Command::Cancel { command_id } => run_cmd::cancel(&ctx, command_id).await,
        Command::Ps(a) => run_cmd::ps(&ctx, a).await,
        Command::Shell(a) => shell_cmd::run(&ctx, a).await,
        Command::Cp(a) => cp_cmd::cp(&ctx, a).await,
        Command::Sftp(c) => cp_cmd::sftp(&ctx, c).await,
        Command::File(c) => file_cmd::run(&ctx, c).await,
        Command::Config { action } => config_cmd::run(&ctx, action).await,
        Command::Forward(a) => forward_cmd::run(&ctx, a).await,
        Command::Completion { shell } => setup_cmd::completion(shell),
        Command::Man => setup_cmd::man(),
        Command::Classify(a) => classify_cmd::run(&ctx, a),
        Command::Profile(c) => profile_cmd::run(&ctx, c).await,
        Command::Approvals(a) => approval_cmd::list(&ctx, a).await,
        Command::Approve(a) => approval_cmd::approve(&ctx, a).await,
        Command::Deny(a) => approval_cmd::deny(&ctx, a).await,
        Command::Service(c) => setup_cmd::service(&ctx, c).await,
        Command::Mcp(a) => {
            let profile = ctx.profile.clone();
            mcp_cmd::run(&ctx, a, profile).await
        }
    }
}
