//! Where `import "name"` finds its module: next to the profile, then the
//! user's library directory, then the system's, then an installed library
//! (`import "acme/browser"` is module `browser` of library `acme`), then
//! the stdlib embedded in the binary. A file of the same name earlier in
//! the chain overrides a later one, so a user can replace any stdlib
//! module. An import inside a library module looks in that library first
//! (and never beside the profile); a library's modules are read from the
//! copy checked against the lock, never through a symlink.

use super::host::Unread;
use super::Sources;
use crate::library::store::{self, Libraries, Library};
use crate::library::tree::Files;
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

/// What compiles for `text` of the file a message calls `file`: for an
/// embedded stdlib module or profile (`<stdlib>/base.rhai`,
/// `<profiles>/firefox.rhai`) with its own text, not a file that overrides
/// it, the copy with the comment lines blank and the code lines unindented
/// (build.rs, `strip::compact`); `text` for any other. Errors still show
/// `text`, line for line the same, at the columns `original_column` gives.
pub(crate) fn compiled<'a>(file: &str, text: &'a str) -> &'a str {
    let find = |prefix: &str, originals: &[(&str, &str)], codes: &'static [(&str, &str)]| {
        let stem = file.strip_prefix(prefix)?.strip_suffix(".rhai")?;
        originals.iter().find(|(n, t)| *n == stem && *t == text)?;
        codes
            .iter()
            .find(|(n, _)| *n == stem)
            .map(|(_, code)| *code)
    };
    find("<stdlib>/", stdlib(), embedded::STDLIB_CODE)
        .or_else(|| find("<profiles>/", embedded_profiles(), embedded::PROFILES_CODE))
        .unwrap_or(text)
}

/// The column in the original text of an embedded stdlib module or profile
/// of a position Rhai gives in its compiled copy (`compiled`), which lacks
/// each code line's indentation: `col` of any other file as it is.
pub fn original_column(file: &str, line: usize, col: usize) -> usize {
    if !file.starts_with('<') {
        return col;
    }
    let dropped = embedded::DROPPED
        .iter()
        .find(|(n, _)| *n == file)
        .and_then(|(_, d)| d.get(line.checked_sub(1)?));
    match dropped {
        Some(&d) if col > 0 => col + usize::from(d),
        _ => col,
    }
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
    /// The libraries imports may use: those given, or the installed ones
    /// (the lock is read on the first import that needs a library).
    libraries: std::cell::OnceCell<Libraries>,
    /// Libraries loaded (and checked against the lock) in this evaluation.
    loaded: RefCell<HashMap<String, Rc<Files>>>,
    /// The library each loaded script belongs to, by its source name.
    origin: RefCell<HashMap<String, String>>,
    /// Modules by source name (the file they came from).
    cache: RefCell<HashMap<String, Shared<Module>>>,
    /// The source name each import path resolved to, by the library it was
    /// imported from: a module imported again is found without looking in
    /// every directory (and reading its file) a second time.
    found: RefCell<HashMap<(Option<String>, String), String>>,
    /// Modules being loaded, outermost first, by source name and import
    /// path: an import of one of them is a cycle, which would otherwise
    /// recurse until the stack overflows.
    loading: RefCell<Vec<(String, String)>>,
    sources: Rc<RefCell<Sources>>,
}

impl Resolver {
    pub fn new(profile: &super::ProfileSource, sources: Rc<RefCell<Sources>>) -> Self {
        let mut origin = HashMap::new();
        if let Some(lib) = &profile.library {
            origin.insert(profile.name.clone(), lib.clone());
        }
        Resolver {
            profile_dir: profile.dir.clone(),
            in_memory: profile.modules.clone(),
            lib_dirs: library_dirs(),
            libraries: profile
                .libraries
                .clone()
                .map_or_else(std::cell::OnceCell::new, std::cell::OnceCell::from),
            loaded: RefCell::new(HashMap::new()),
            origin: RefCell::new(origin),
            cache: RefCell::new(HashMap::new()),
            found: RefCell::new(HashMap::new()),
            loading: RefCell::new(Vec::new()),
            sources,
        }
    }

    /// The files of library `name`, read and checked against the lock
    /// once per evaluation.
    fn library(&self, name: &str) -> Result<Option<(Library, Rc<Files>)>, String> {
        let libraries = self.libraries.get_or_init(Libraries::installed);
        let Some(lib) = libraries.get(name)? else {
            return Ok(None);
        };
        if let Some(files) = self.loaded.borrow().get(name) {
            return Ok(Some((lib.clone(), files.clone())));
        }
        // Used even when refused: `moksha lib update` compares what imports it.
        libraries.mark_used(name);
        let files = Rc::new(lib.load()?);
        self.loaded
            .borrow_mut()
            .insert(name.to_string(), files.clone());
        Ok(Some((lib.clone(), files)))
    }

    /// Module `module` of library `lib`: (display name, source, library).
    fn in_library(
        &self,
        lib: &str,
        module: &str,
    ) -> Result<Option<(String, String, Option<String>)>, String> {
        let Some((library, files)) = self.library(lib)? else {
            return Ok(None);
        };
        let file = Library::module_file(module);
        let Some(bytes) = files.get(&file) else {
            return Ok(None);
        };
        let name = library.display(&file);
        let text =
            String::from_utf8(bytes.clone()).map_err(|_| format!("{name} is not UTF-8 text"))?;
        Ok(Some((name, text, Some(lib.to_string()))))
    }

    /// Finds the module text: (display name, source, the library it is
    /// part of). `from` is the library of the importing script.
    fn find(
        &self,
        from: Option<&str>,
        path: &str,
    ) -> Result<(String, String, Option<String>), String> {
        let file = format!("{path}.rhai");
        if let Some((_, text)) = self.in_memory.iter().find(|(n, _)| n == path) {
            return Ok((format!("<{file}>"), text.clone(), None));
        }
        if let Some(lib) = from {
            if let Some(found) = self.in_library(lib, path)? {
                return Ok(found);
            }
        }
        // A library's import never looks beside the profile that imported it.
        let dirs = self
            .profile_dir
            .iter()
            .filter(|_| from.is_none())
            .chain(self.lib_dirs.iter());
        let mut searched = Vec::new();
        for dir in dirs {
            let candidate = dir.join(&file);
            // A module is a regular file of at most the engine's string
            // size: a FIFO, a device or a huge file is refused unread,
            // whatever directory holds it.
            match super::host::read_bounded(&candidate, super::limits::STRING_BYTES as u64) {
                Ok(text) => return Ok((candidate.to_string_lossy().into_owned(), text, None)),
                // A library directory we may not enter (e.g. another user's
                // home) holds nothing for us.
                Err(Unread::Absent) => searched.push(candidate.to_string_lossy().into_owned()),
                Err(Unread::Refused(why)) => return Err(format!("import {path:?}: {why}")),
            }
        }
        if let Some((lib, module)) = store::split(path) {
            if let Some(found) = self.in_library(lib, module)? {
                return Ok(found);
            }
            if let Some((library, files)) = self.library(lib)? {
                let modules: Vec<String> = files
                    .keys()
                    .filter_map(|f| f.strip_prefix("modules/")?.strip_suffix(".rhai"))
                    .map(|m| format!("{lib}/{m}"))
                    .collect();
                return Err(format!(
                    "module {path:?} not found: library {lib} ({}) has no module {module:?}{}",
                    library.root.display(),
                    crate::suggest::did_you_mean(path, modules.iter().map(String::as_str))
                ));
            }
        }
        if let Some((_, text)) = stdlib().iter().find(|(n, _)| *n == path) {
            return Ok((stdlib_source_name(path), text.to_string(), None));
        }
        searched.push("the installed libraries".into());
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
        source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<Shared<Module>, Box<EvalAltResult>> {
        let error = |m: String| Box::new(EvalAltResult::ErrorRuntime(m.into(), pos));
        let path = path.strip_suffix(".rhai").unwrap_or(path);
        check_import(path).map_err(error)?;
        let from = source.and_then(|s| self.origin.borrow().get(s).cloned());
        let key = (from.clone(), path.to_string());
        let known = self.found.borrow().get(&key).cloned();
        if let Some(module) = known.and_then(|name| self.cache.borrow().get(&name).cloned()) {
            return Ok(module);
        }
        let (name, text, library) = self.find(from.as_deref(), path).map_err(error)?;
        self.found.borrow_mut().insert(key, name.clone());
        // Modules are told apart by the file they came from: two libraries'
        // `util` are two modules.
        if let Some(module) = self.cache.borrow().get(&name) {
            return Ok(module.clone());
        }
        let cycle = {
            let loading = self.loading.borrow();
            if loading.iter().any(|(m, _)| *m == name) {
                let mut chain: Vec<String> = loading.iter().map(|(_, p)| p.clone()).collect();
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
            return Err(error(message));
        }
        if let Some(lib) = library {
            self.origin.borrow_mut().insert(name.clone(), lib);
        }
        self.loading
            .borrow_mut()
            .push((name.clone(), path.to_string()));
        let loaded = self.load(engine, &name, &text, pos);
        self.loading.borrow_mut().pop();
        let module = loaded?;
        self.cache.borrow_mut().insert(name, module.clone());
        Ok(module)
    }
}

impl Resolver {
    /// Compiles and evaluates the module `name` (its source name) of `text`.
    fn load(
        &self,
        engine: &Engine,
        name: &str,
        text: &str,
        pos: Position,
    ) -> Result<Shared<Module>, Box<EvalAltResult>> {
        self.sources
            .borrow_mut()
            .insert(name.to_string(), text.to_string());
        let in_module = |err: EvalAltResult| {
            Box::new(EvalAltResult::ErrorInModule(
                name.to_string(),
                err.into(),
                pos,
            ))
        };
        let code = compiled(name, text);
        let mut ast = engine
            .compile(code)
            .map_err(|e| in_module(EvalAltResult::ErrorParsing(*e.0, e.1)))?;
        ast.set_source(name);
        let module =
            Module::eval_ast_as_new(Scope::new(), &ast, engine).map_err(|e| in_module(*e))?;
        Ok(module.into())
    }
}
