//! Where `import "name"` finds its module: next to the profile, then the
//! user's library directory, then the system's, then the stdlib embedded in
//! the binary. A file of the same name earlier in the chain overrides a later
//! one, so a user can replace any stdlib module.

use super::host::Unread;
use super::Sources;
use rhai::{Engine, EvalAltResult, Module, Position, Scope, Shared};
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}

/// The stdlib modules embedded at build time: (name, source).
pub fn stdlib() -> &'static [(&'static str, &'static str)] {
    embedded::STDLIB
}

/// The profiles embedded at build time: (name, source).
pub fn embedded_profiles() -> &'static [(&'static str, &'static str)] {
    embedded::PROFILES
}

/// The display name of an embedded stdlib module in messages.
pub fn stdlib_source_name(name: &str) -> String {
    format!("<stdlib>/{name}.rhai")
}

/// The user's and the system's library directories, in lookup order.
pub fn library_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Ok(cfg) = super::host::xdg_dir("config") {
        dirs.push(PathBuf::from(cfg).join("moksha/lib"));
    }
    dirs.push(PathBuf::from("/etc/moksha/lib"));
    dirs
}

pub struct Resolver {
    /// The importing profile's directory; `None` for embedded profiles.
    profile_dir: Option<PathBuf>,
    /// Modules held in memory (import path, source), looked up first.
    in_memory: Vec<(String, String)>,
    lib_dirs: Vec<PathBuf>,
    cache: RefCell<HashMap<String, Shared<Module>>>,
    /// Modules being loaded, outermost first: an import of one of them is a
    /// cycle, which would otherwise recurse until the stack overflows.
    loading: RefCell<Vec<String>>,
    sources: Rc<RefCell<Sources>>,
}

impl Resolver {
    pub fn new(
        profile_dir: Option<PathBuf>,
        in_memory: Vec<(String, String)>,
        sources: Rc<RefCell<Sources>>,
    ) -> Self {
        Resolver {
            profile_dir,
            in_memory,
            lib_dirs: library_dirs(),
            cache: RefCell::new(HashMap::new()),
            loading: RefCell::new(Vec::new()),
            sources,
        }
    }

    /// Finds the module text: (display name, source).
    fn find(&self, path: &str) -> Result<(String, String), String> {
        let file = format!("{path}.rhai");
        if let Some((_, text)) = self.in_memory.iter().find(|(n, _)| n == path) {
            return Ok((format!("<{file}>"), text.clone()));
        }
        let dirs = self.profile_dir.iter().chain(self.lib_dirs.iter());
        let mut searched = Vec::new();
        for dir in dirs {
            let candidate = dir.join(&file);
            // A module is a regular file of at most the engine's string
            // size: a FIFO, a device or a huge file is refused unread,
            // whatever directory holds it.
            match super::host::read_bounded(&candidate, super::limits::STRING_BYTES as u64) {
                Ok(text) => return Ok((candidate.to_string_lossy().into_owned(), text)),
                // A library directory we may not enter (e.g. another user's
                // home) holds nothing for us.
                Err(Unread::Absent) => searched.push(candidate.to_string_lossy().into_owned()),
                Err(Unread::Refused(why)) => return Err(format!("import {path:?}: {why}")),
            }
        }
        if let Some((_, text)) = stdlib().iter().find(|(n, _)| *n == path) {
            return Ok((stdlib_source_name(path), text.to_string()));
        }
        searched.push("the embedded stdlib".into());
        Err(format!(
            "module {path:?} not found; looked in {}{}",
            searched.join(", "),
            crate::suggest::did_you_mean(path, self.importable(path).iter().map(String::as_str))
        ))
    }

    /// The modules an import beside `path` could name, for "did you mean":
    /// the stdlib's and the `.rhai` files in the same subdirectory of each
    /// directory searched.
    fn importable(&self, path: &str) -> Vec<String> {
        let sub = path.rsplit_once('/').map(|(dir, _)| dir);
        let mut names: Vec<String> = match sub {
            None => stdlib().iter().map(|(n, _)| n.to_string()).collect(),
            Some(_) => Vec::new(),
        };
        for dir in self.profile_dir.iter().chain(self.lib_dirs.iter()) {
            let dir = sub.map_or_else(|| dir.clone(), |s| dir.join(s));
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let file = entry.file_name();
                let Some(stem) = file.to_str().and_then(|f| f.strip_suffix(".rhai")) else {
                    continue;
                };
                names.push(match sub {
                    Some(s) => format!("{s}/{stem}"),
                    None => stem.to_string(),
                });
            }
        }
        names
    }
}

/// Import paths are plain names, optionally with `/` for subdirectories:
/// no absolute paths, no `..`, no extension games.
fn check_import(path: &str) -> Result<(), String> {
    if path.starts_with('/') {
        return Err(format!(
            "import {path:?}: absolute paths are refused; import a module by name (e.g. import \"base\")"
        ));
    }
    if path
        .split('/')
        .any(|c| c == ".." || c == "." || c.is_empty())
    {
        return Err(format!(
            "import {path:?}: '..', '.' and empty components are refused in imports"
        ));
    }
    if !path
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '/' | '.'))
    {
        return Err(format!(
            "import {path:?}: module names may use letters, digits, '_', '-', '.' and '/'"
        ));
    }
    Ok(())
}

impl rhai::ModuleResolver for Resolver {
    fn resolve(
        &self,
        engine: &Engine,
        _source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<Shared<Module>, Box<EvalAltResult>> {
        let path = path.strip_suffix(".rhai").unwrap_or(path);
        check_import(path).map_err(|m| EvalAltResult::ErrorRuntime(m.into(), pos))?;
        if let Some(module) = self.cache.borrow().get(path) {
            return Ok(module.clone());
        }
        let cycle = {
            let loading = self.loading.borrow();
            if loading.iter().any(|m| m == path) {
                let mut chain = loading.clone();
                chain.push(path.to_string());
                Some(format!(
                    "import {path:?} is a cycle: {}",
                    chain.join(" imports ")
                ))
            } else if loading.len() >= super::limits::MODULES {
                Some(format!(
                    "import {path:?}: imports nested deeper than {} modules",
                    super::limits::MODULES
                ))
            } else {
                None
            }
        };
        if let Some(message) = cycle {
            return Err(EvalAltResult::ErrorRuntime(message.into(), pos).into());
        }
        self.loading.borrow_mut().push(path.to_string());
        let loaded = self.load(engine, path, pos);
        self.loading.borrow_mut().pop();
        let module = loaded?;
        self.cache
            .borrow_mut()
            .insert(path.to_string(), module.clone());
        Ok(module)
    }
}

impl Resolver {
    /// Finds, compiles and evaluates the module `path`.
    fn load(
        &self,
        engine: &Engine,
        path: &str,
        pos: Position,
    ) -> Result<Shared<Module>, Box<EvalAltResult>> {
        let (name, text) = self
            .find(path)
            .map_err(|m| EvalAltResult::ErrorRuntime(m.into(), pos))?;
        self.sources.borrow_mut().insert(name.clone(), text.clone());
        let in_module = |err: EvalAltResult| {
            Box::new(EvalAltResult::ErrorInModule(name.clone(), err.into(), pos))
        };
        let mut ast = engine
            .compile(&text)
            .map_err(|e| in_module(EvalAltResult::ErrorParsing(*e.0, e.1)))?;
        ast.set_source(name.as_str());
        let module =
            Module::eval_ast_as_new(Scope::new(), &ast, engine).map_err(|e| in_module(*e))?;
        Ok(module.into())
    }
}
