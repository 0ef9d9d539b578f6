//! moksha: a programmable Linux application sandbox.
//!
//! profile.rhai ─► script (Rhai engine) ─► plan ─► validate ─► launch ─► supervise
//!
//! `script` evaluates a profile into a `plan::Plan` without touching the host;
//! `launch` turns a validated plan into namespaces, mounts and a process,
//! making every system call through `sys`.

#[cfg(test)]
mod architecture;
pub mod arg;
pub mod changes;
pub mod cli;
pub mod commands;
pub mod explain;
pub mod heap;
pub mod import;
pub mod install;
pub mod launch;
pub mod library;
pub mod library_cli;
pub mod located;
pub mod manage;
pub mod manual;
pub mod plan;
pub mod policy;
pub mod policy_test;
pub mod profiles;
pub mod quick;
pub mod script;
pub mod state;
pub mod suggest;
pub mod sys;
pub mod table;
pub mod text;
pub mod xdg;
