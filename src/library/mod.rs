//! Profile libraries: directories (usually git repositories) of Rhai
//! modules and profiles with a manifest, installed pinned to a commit and
//! a content hash, and checked against that pin whenever they are loaded.
//! This is data and files only (the resolver imports from it); the `moksha
//! lib` commands are in `library_cli`.
//!
//! | module   | holds                                                      |
//! |----------|------------------------------------------------------------|
//! | manifest | `moksha-lib.toml`: name, version, API range, contents      |
//! | tree     | a library's files as data: which, limits, hashes, reading  |
//! | lock     | `~/.config/moksha/libs.lock`: what is installed, pinned    |
//! | store    | installed copies and the set the resolver imports from     |
//! | git      | fetching a commit's files with the `git` program           |

pub mod git;
pub mod lock;
pub mod manifest;
pub mod store;
pub mod tree;
