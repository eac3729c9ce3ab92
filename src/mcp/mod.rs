//! `sshkeep mcp`: a Model Context Protocol server on stdio for AI agents.
//!
//! The adapter is only a client of the broker: it starts the broker if needed and forwards each
//! tool call over the owner-only socket. It never opens the vault, a key file or an SSH
//! connection itself, and only the `command` argument is ever run on a server. Everything it
//! logs goes to stderr: stdout is the protocol.

mod args;
mod bulk_tool;
mod catalog;
mod conn_tool;
mod exec_tool;
mod files_tool;
mod framing;
mod http;
mod key_tool;
mod params;
mod progress;
mod reply;
mod resources;
mod schema;
mod shell_tool;
mod vocab;

use anyhow::Result;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{
    CallToolResult, Implementation, ListResourceTemplatesResult, ListResourcesResult,
    ListToolsResult, PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse,
    ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt, tool, tool_handler, tool_router};
use serde_json::json;

use crate::client::{Client, FromReply};
use crate::paths::Paths;
use crate::protocol::{Request, StatusInfo};
use args::{
    BulkAuditArgs, BulkConnArgs, BulkExecArgs, ClientArgs, ConnArgs, ExecArgs, FileArgs, KeyArgs,
    NoArgs, SearchArgs, SftpArgs, ShellArgs, StreamInfoArgs,
};
use params::Parameters;
use reply::{from_error, ok};

pub use http::serve_http;

/// The adapter's state: where the broker is, whether to list only the core tools, and the local
/// directories file transfers may use.
#[derive(Clone)]
pub struct Adapter {
    paths: Paths,
    minimal: bool,
    /// Absolute; relative local paths are resolved against the first.
    roots: Vec<std::path::PathBuf>,
    /// Values the user marked secret, redacted from output an agent reads.
    marked: Vec<String>,
    /// The profile every broker connection of this adapter works under, named in its hello
    /// (stdio: `agent` unless told otherwise; HTTP: the session's token's).
    profile: Option<String>,
    tool_router: ToolRouter<Self>,
}

impl Adapter {
    /// Output lines as the agent may read them (see `authority::redact`): the stored log keeps
    /// the original for the user.
    pub fn redactor(&self) -> crate::authority::redact::LineRedactor<'_> {
        crate::authority::redact::LineRedactor::new(&self.marked)
    }

    /// One request to the broker on a connection of its own (starting the broker if needed),
    /// and its reply's payload.
    async fn call<R: FromReply>(&self, req: Request) -> Result<R> {
        Client::connect(&self.paths, self.profile.as_deref())
            .await?
            .call(&req)
            .await
    }

    /// The allowed local roots, for the broker to enforce.
    fn roots(&self) -> Vec<String> {
        self.roots.iter().map(|r| r.display().to_string()).collect()
    }

    /// A local path from an agent, made absolute against the first root.
    fn local_path(&self, p: &str) -> Result<String, String> {
        if p.is_empty() {
            return Err("localPath is empty".into());
        }
        let path = std::path::Path::new(p);
        let abs = if path.is_absolute() {
            path.to_path_buf()
        } else {
            match self.roots.first() {
                Some(r) => r.join(path),
                None => return Err(NO_ROOTS.into()),
            }
        };
        Ok(abs.display().to_string())
    }
}

#[tool_router(router = tool_router)]
impl Adapter {
    /// Builds the adapter.
    pub fn new(paths: Paths, minimal: bool, roots: Vec<std::path::PathBuf>) -> Self {
        let mut tool_router = Self::tool_router();
        for route in tool_router.map.values_mut() {
            route.attr.input_schema =
                std::sync::Arc::new(schema::compact(&route.attr.input_schema));
            // Each tool's description is kept in the catalog, with its ops.
            let entry = catalog::entry(&route.attr.name);
            route.attr.description = entry.map(|e| e.description.into());
            route.attr.annotations = entry.map(|e| e.hints.annotations());
        }
        Self {
            marked: crate::authority::redact::marked_values(&paths.config),
            paths,
            minimal,
            roots,
            profile: None,
            tool_router,
        }
    }

    /// The same adapter, working under `profile`.
    pub fn under(mut self, profile: Option<String>) -> Self {
        self.profile = profile;
        self
    }

    #[tool]
    async fn ssh_tool_search(
        &self,
        Parameters(a): Parameters<SearchArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let a = match a {
            Ok(a) => a,
            Err(refused) => return Ok(refused),
        };
        let hits = catalog::search(&a.query);
        // What an agent needs to call a tool it found, hidden from the list or not.
        let results: Vec<_> = hits
            .iter()
            .filter_map(|(e, ops)| {
                let tool = self.tool_router.get(e.tool)?;
                Some(json!({
                    "tool": e.tool,
                    "description": tool.description,
                    "matchingOps": ops,
                    "inputSchema": tool.input_schema,
                    "listed": e.core || !self.minimal,
                }))
            })
            .collect();
        let summary = if hits.is_empty() {
            format!(
                "no tool matches {:?}; tools: {}",
                a.query,
                catalog::TOOLS
                    .iter()
                    .map(|e| e.tool)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            hits.iter()
                .map(|(e, ops)| {
                    if ops.is_empty() {
                        e.tool.to_string()
                    } else {
                        format!("{} (op: {})", e.tool, ops.join(", "))
                    }
                })
                .collect::<Vec<_>>()
                .join("; ")
        };
        Ok(ok(summary, json!({ "query": a.query, "results": results })))
    }

    #[tool]
    async fn ssh_server_status(
        &self,
        Parameters(a): Parameters<NoArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        if let Err(refused) = a {
            return Ok(refused);
        }
        Ok(match self.call::<StatusInfo>(Request::Status).await {
            Ok(s) => {
                let vault = match (&s.vault.backend, s.vault.unlocked) {
                    (None, _) => "no vault yet (the user runs `sshkeep vault init`)".to_string(),
                    (Some(b), true) => format!("vault unlocked ({b})"),
                    (Some(b), false) => {
                        format!("vault LOCKED ({b}): the user runs `sshkeep unlock`")
                    }
                };
                let profile = match &s.profile {
                    Some(p) => format!(
                        "; you work under profile '{}': {} (its full limits are in `profile.body`)",
                        p.name, p.description
                    ),
                    None => String::new(),
                };
                ok(
                    format!(
                        "sshkeep {} up {}s; {vault}; {} sessions open, {} commands running{profile}",
                        s.broker_version, s.uptime_secs, s.sessions_open, s.commands_running
                    ),
                    json!(s),
                )
            }
            Err(e) => from_error(e),
        })
    }

    #[tool]
    async fn ssh_conn(
        &self,
        Parameters(a): Parameters<ConnArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        Ok(match a {
            Ok(a) => conn_tool::conn(self, a).await,
            Err(refused) => refused,
        })
    }

    #[tool]
    async fn ssh_key(
        &self,
        Parameters(a): Parameters<KeyArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        Ok(match a {
            Ok(a) => key_tool::key(self, a).await,
            Err(refused) => refused,
        })
    }

    #[tool]
    async fn ssh_exec(
        &self,
        Parameters(a): Parameters<ExecArgs>,

        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        Ok(match a {
            Ok(a) => exec_tool::exec(self, a, &mut progress::Watch::new(&ctx)).await,
            Err(refused) => refused,
        })
    }

    #[tool]
    async fn ssh_stream_info(
        &self,
        Parameters(a): Parameters<StreamInfoArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        Ok(match a {
            Ok(a) => exec_tool::stream_info(self, a).await,
            Err(refused) => refused,
        })
    }

    #[tool]
    async fn ssh_bulk_exec(
        &self,
        Parameters(a): Parameters<BulkExecArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        Ok(match a {
            Ok(a) => bulk_tool::bulk_exec(self, a).await,
            Err(refused) => refused,
        })
    }

    #[tool]
    async fn ssh_bulk_conn(
        &self,
        Parameters(a): Parameters<BulkConnArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        Ok(match a {
            Ok(a) => bulk_tool::bulk_conn(self, a).await,
            Err(refused) => refused,
        })
    }

    #[tool]
    async fn ssh_bulk_audit(
        &self,
        Parameters(a): Parameters<BulkAuditArgs>,

        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        Ok(match a {
            Ok(a) => bulk_tool::bulk_audit(self, a, &mut progress::Watch::new(&ctx)).await,
            Err(refused) => refused,
        })
    }

    #[tool]
    async fn ssh_shell(
        &self,
        Parameters(a): Parameters<ShellArgs>,

        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        Ok(match a {
            Ok(a) => shell_tool::shell(self, a, &mut progress::Watch::new(&ctx)).await,
            Err(refused) => refused,
        })
    }

    #[tool]
    async fn ssh_sftp(
        &self,
        Parameters(a): Parameters<SftpArgs>,

        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        Ok(match a {
            Ok(a) => files_tool::sftp(self, a, &mut progress::Watch::new(&ctx)).await,
            Err(refused) => refused,
        })
    }

    #[tool]
    async fn ssh_file(
        &self,
        Parameters(a): Parameters<FileArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        Ok(match a {
            Ok(a) => files_tool::file(self, a).await,
            Err(refused) => refused,
        })
    }

    #[tool]
    async fn ssh_client(
        &self,
        Parameters(a): Parameters<ClientArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        Ok(match a {
            Ok(a) => conn_tool::client(self, a).await,
            Err(refused) => refused,
        })
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Adapter {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .build(),
        )
        .with_server_info(Implementation::new("sshkeep", env!("CARGO_PKG_VERSION")))
        .with_instructions(INSTRUCTIONS.to_string())
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        resources::list(self, request.as_ref().and_then(|r| r.cursor.as_deref())).await
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(resources::templates())
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        resources::read(self, &request.uri).await.map(Into::into)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let core: Vec<&str> = catalog::TOOLS
            .iter()
            .filter(|e| e.core)
            .map(|e| e.tool)
            .collect();
        let tools = self
            .tool_router
            .list_all()
            .into_iter()
            .filter(|t| !self.minimal || core.contains(&t.name.as_ref()))
            .collect();
        Ok(ListToolsResult {
            tools,
            ..Default::default()
        })
    }
}

/// What the adapter tells an agent when it connects.
const INSTRUCTIONS: &str = "SSH through sshkeep: keys stay in sshkeep's encrypted vault and host keys are checked. Find connections with ssh_conn op=list, open a session with ssh_exec op=open, start commands with op=run (returns at once), poll op=status, read output with op=logs (tail, grep), close the session when done. Long work: run with detach=true.";

/// Why a file transfer has no local directory to use.
const NO_ROOTS: &str = "no local directory is open to file transfers: the adapter was started in `/`, the home directory or above it, which is too broad to allow by default; the user starts `sshkeep mcp --root DIR` (or sets SSHKEEP_MCP_ROOTS) for the directories an agent may use";

/// The default root: the working directory, unless that is `/`, the home directory or a
/// directory above it (GUI MCP hosts often start servers there, and an agent must not get the
/// whole home, with `~/.ssh` and sshkeep's own state, by accident).
fn default_roots() -> Result<Vec<std::path::PathBuf>> {
    let cwd = std::env::current_dir()?;
    let real = std::fs::canonicalize(&cwd).unwrap_or_else(|_| cwd.clone());
    let home = std::env::home_dir()
        .map(|h| std::fs::canonicalize(&h).unwrap_or(h))
        .filter(|h| h.is_absolute());
    let too_broad = real.parent().is_none() || home.is_some_and(|h| h.starts_with(&real));
    if too_broad {
        tracing::warn!(
            "the working directory {} is not used as a root for file transfers; start `sshkeep mcp --root DIR` to allow one",
            cwd.display()
        );
        return Ok(Vec::new());
    }
    Ok(vec![cwd])
}

/// The roots asked for (or the default ones), made absolute.
fn absolute_roots(roots: Vec<std::path::PathBuf>) -> Result<Vec<std::path::PathBuf>> {
    let roots = if roots.is_empty() {
        default_roots()?
    } else {
        roots
    };
    let mut absolute = Vec::new();
    for r in roots {
        absolute.push(std::path::absolute(&r)?);
    }
    Ok(absolute)
}

/// Serves MCP on stdin/stdout until the client goes away. `roots` are the local directories
/// `ssh_sftp` may read and write (default: the working directory, unless it is `/` or the
/// home directory or above it: then none).
pub async fn serve(
    paths: Paths,
    minimal: bool,
    roots: Vec<std::path::PathBuf>,
    profile: Option<String>,
) -> Result<()> {
    let (transport, pump) = framing::stdio();
    let service = Adapter::new(paths, minimal, absolute_roots(roots)?)
        .under(profile)
        .serve(transport)
        .await?;
    service.waiting().await?;
    // Every reply written before the adapter exits.
    let _ = pump.await;
    Ok(())
}
