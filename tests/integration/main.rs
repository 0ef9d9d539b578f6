//! One integration test binary: every test runs the real `moksha` binary.
//! Sandbox tests run twice, as root and rootless as uid 65534.

mod cli;
mod command_line;
mod common;
mod current_dir;
mod desktop;
mod egress;
mod escape;
mod explain;
mod firejail;
mod firejail_programs;
mod helper_confinement;
mod host_checks;
mod install;
mod library;
mod lookup;
mod manage;
mod memory;
mod network;
mod policy;
#[cfg(target_arch = "x86_64")]
mod reference;
mod resolved;
mod sandbox;
mod security;
mod shipped;
mod trace;
mod untrusted_text;
mod web;
mod workflows;
mod workspace;
