//! The XDG base directories (`directories`: `$HOME`, else the password
//! database; each `XDG_*` variable when it is an absolute path, else its
//! default under the home), for the profile's host queries
//! (`script::host`) and the stores a launch keeps (changes, state,
//! installed launchers). A relative home is not a home.

/// Found once per process: moksha never changes its own environment, and
/// profiles ask for them often (20 times in `moksha plan chromium`, 1.6%
/// of its instructions when each call built them again).
pub fn base_dirs() -> Option<&'static directories::BaseDirs> {
    static DIRS: std::sync::OnceLock<Option<directories::BaseDirs>> = std::sync::OnceLock::new();
    DIRS.get_or_init(|| directories::BaseDirs::new().filter(|b| b.home_dir().is_absolute()))
        .as_ref()
}
