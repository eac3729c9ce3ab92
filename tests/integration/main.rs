//! Integration tests: the real broker binary against real OpenSSH sshd instances on loopback.

mod fixture;

mod agent_keys;
mod agent_ssh_add;
mod approvals;
mod audit_log;
mod auth_methods;
mod authority;
mod commands;
mod exec_and_keys;
mod files;
mod first_hour;
mod fleet;
mod forwards;
mod forwards_kept;
mod hardening;
mod hardening_at_rest;
mod hardening_memory;
mod host_keys;
mod jump_hosts;
mod key_lifecycle;
mod keyring_backend;
mod mcp;
mod mcp_contract;
mod mcp_fleet;
mod mcp_http;
mod mcp_progress;
mod mcp_redaction;
mod output_store;
mod packaging;
mod second_factor;
mod shells;
mod socket;
mod ssh_config_import;
mod survival;
mod vault_unlock;
