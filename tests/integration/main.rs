//! One integration test binary: every test runs the real `moksha` binary.
//! Sandbox tests run twice, as root and rootless as uid 65534.

mod cli;
mod common;
mod desktop;
mod escape;
mod install;
mod manage;
mod network;
mod resolved;
mod sandbox;
mod security;
mod workflows;
