//! sshkeep: an SSH broker that keeps private keys age-encrypted at rest, unlocks them through
//! the OS keyring or a passphrase, and owns every SSH session. Clients (the CLI, the MCP
//! adapter) talk to it over an owner-only local socket; private keys never leave it.

pub mod authority;
pub mod broker;
pub mod certs;
pub mod cli;
pub mod client;
pub mod clock;
pub mod db;
pub mod forward_spec;
pub mod frame;
pub mod keys;
pub mod logs;
pub mod mcp;
pub mod paths;
pub mod protocol;
pub mod settings;
pub mod ssh;
pub mod ssh_config;
pub mod system;
pub mod target;

/// Every freed block is wiped before it is reused: see [`system::wipe`].
#[global_allocator]
static ALLOCATOR: system::wipe::WipingAllocator = system::wipe::WipingAllocator;
