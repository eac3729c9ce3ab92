//! What to do about a failure, said once for every client. An error carries its next step as
//! data; the CLI words it as a command line ([`NextStep::cli`]) and the MCP adapter as a tool
//! call, so neither has to rewrite the other's text.

use serde::{Deserialize, Serialize};

/// The next step after a failure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum NextStep {
    /// Look the connection up among the saved ones.
    ListConns,
    /// Look the key up among the vault's keys.
    ListKeys,
    /// Look the command up among the commands.
    ListCommands,
    /// Look the session up among the open sessions.
    ListSessions,
    /// Look the client group up among the groups.
    ListClients,
    /// Look the shell up among the shells.
    ListShells,
    /// A bulk run's id comes from starting the run.
    BulkRunId,
    /// A fleet audit's id comes from running the audit.
    AuditId,
    /// Diagnose the connection.
    TestConn,
    /// Put a key into the vault.
    AddKey,
    /// Link a key to the connection.
    LinkKey { conn: String },
    /// Log in through a saved connection that names a key.
    SaveConnWithKey {
        user: String,
        host: String,
        port: u16,
    },
    /// Put the key's public half into the server's authorized_keys.
    AuthorizeKey { key: String },
    /// Pin a host key that is not trusted yet, after checking it out of band.
    TrustHostKey { conn: String, fingerprint: String },
    /// Replace a pinned host key: the user's decision alone.
    RepinHostKey { conn: String, fingerprint: String },
    /// Unlink the key from its connections, or remove it anyway.
    UnlinkOrForce { key: String },
    /// Use the key that replaced a retired one, or destroy the retired key.
    RetiredKey { key: String },
    /// Continue an unfinished key rotation.
    ResumeRotation { key: String },
    /// Start a key rotation.
    StartRotation { key: String },
    /// The user unlocks the vault (new logins need it).
    Unlock,
    /// The user creates the vault.
    VaultInit,
    /// The request waits for the user's approval (`id`: a command id or a bulk run id).
    AwaitApproval { id: String },
    /// Only the user, present at a terminal, may do this (`command` does it).
    UserOnly { command: String },
    /// Start it as an asynchronous run, which can wait for the user's approval.
    RunToWait,
    /// The server asks a question at login only a person can answer (a one-time code): the
    /// user logs in once at a terminal with `command`, and sshkeep reuses that session.
    LogInAtTerminal { command: String },
}

impl NextStep {
    /// The step as a person at a terminal takes it.
    pub fn cli(&self) -> String {
        match self {
            Self::ListConns => "see `sshkeep conn list`, or use user@host[:port]".into(),
            Self::ListKeys => "see `sshkeep key list`".into(),
            Self::ListCommands => "see `sshkeep ps` for command ids".into(),
            Self::ListSessions => {
                "see `sshkeep session list` (sessions end when the broker stops)".into()
            }
            Self::ListClients => "see `sshkeep client list`".into(),
            Self::ListShells => "list shells with `sshkeep shell --list`".into(),
            Self::BulkRunId => "the id comes from `sshkeep bulk exec`".into(),
            Self::AuditId => "the id comes from `sshkeep bulk audit`".into(),
            Self::TestConn => "diagnose it with `sshkeep conn test`".into(),
            Self::AddKey => "add it first with `sshkeep key add` or `sshkeep key generate`".into(),
            Self::LinkKey { conn } => {
                format!("link one with `sshkeep key link KEY {conn}`, or pass --key")
            }
            Self::SaveConnWithKey { user, host, port } => format!(
                "pass --key KEY, or save a connection with `sshkeep conn save NAME --host {host} --port {port} --user {user} --key KEY`"
            ),
            Self::AuthorizeKey { key } => format!(
                "add its public key to that user's ~/.ssh/authorized_keys on the server (`sshkeep key pub {key}` prints the line)"
            ),
            Self::TrustHostKey { conn, fingerprint } => format!(
                "check it out of band, then run `sshkeep conn trust {conn} --fingerprint {fingerprint}`"
            ),
            Self::RepinHostKey { conn, fingerprint } => format!(
                "if the server was really re-keyed, check the new fingerprint out of band, then run `sshkeep conn trust {conn} --fingerprint {fingerprint}`"
            ),
            Self::UnlinkOrForce { key } => {
                format!("unlink it first (`sshkeep key unlink {key} CONN`) or pass --force")
            }
            Self::RetiredKey { key } => format!(
                "use the key that replaced it (see `sshkeep key list`), or destroy it with `sshkeep key remove {key}`"
            ),
            Self::ResumeRotation { key } => {
                format!("continue it with `sshkeep key rotate {key} --resume`")
            }
            Self::StartRotation { key } => format!("start one with `sshkeep key rotate {key}`"),
            Self::Unlock => "new logins need `sshkeep unlock`".into(),
            Self::VaultInit => "run `sshkeep vault init`".into(),
            Self::AwaitApproval { id } => format!(
                "it runs once you approve it with `sshkeep approve {id}` (or refuse it with `sshkeep deny {id}`)"
            ),
            Self::UserOnly { command } => format!("run `{command}` yourself in your terminal"),
            Self::RunToWait => {
                "start it with `sshkeep run`, which can wait for the user's approval".into()
            }
            Self::LogInAtTerminal { command } => format!(
                "a person logs in once with `{command}` at a terminal, typing the code there; later requests (an agent's too) reuse that session"
            ),
        }
    }

    /// `problem` followed by this step, as the CLI prints it.
    pub fn after(&self, problem: &str) -> String {
        format!("{problem}; {}", self.cli())
    }
}
