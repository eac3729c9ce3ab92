//! Integration tests: the real broker binary against real OpenSSH sshd instances on loopback.

mod fixture;

mod audit_log;
mod commands;
mod exec_and_keys;
mod files;
mod fleet;
mod hardening;
mod host_keys;
mod key_lifecycle;
mod keyring_backend;
mod mcp;
mod mcp_fleet;
mod shells;
mod socket;
mod survival;
mod vault_unlock;
