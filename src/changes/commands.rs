//! `moksha diff`, `moksha commit`, `moksha discard`, and the changes
//! section of `moksha ps`.

use super::scan::HostDir;
use super::{apply, show, Store};

fn finish(result: super::Result<()>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("moksha: {}", crate::text::shown(e));
            1
        }
    }
}

/// `moksha diff NAME [--stat] [--name-only]`.
pub fn diff(name: &str, stat: bool, names_only: bool) -> i32 {
    finish((|| {
        let store = Store::named(name)?;
        let m = store.manifest()?;
        let host = HostDir::open(&m.source)?;
        let changes = store.scan(&m, &host)?;
        let text = if names_only {
            show::list(&changes)
        } else if stat {
            show::stat(&changes, &store.upper(), &host)?
        } else {
            show::unified(&changes, &store.upper(), &host)?
        };
        print!("{text}");
        Ok(())
    })())
}

/// `moksha commit NAME [PATH...]`.
pub fn commit(name: &str, paths: &[String]) -> i32 {
    finish((|| {
        let store = Store::named(name)?;
        let done = apply::commit(&store, paths)?;
        let m_source = store.manifest().map(|m| m.source).ok();
        eprint!("{}", show::list(&done.applied));
        match m_source {
            Some(_) => eprintln!(
                "moksha: committed {} change(s); the others stay in {name:?}",
                done.applied.len()
            ),
            None => eprintln!(
                "moksha: committed {} change(s); {name:?} is empty and removed",
                done.applied.len()
            ),
        }
        Ok(())
    })())
}

/// `moksha discard NAME`.
pub fn discard(name: &str) -> i32 {
    finish(Store::named(name).and_then(|s| apply::discard(&s)))
}

/// The stores with changes, as table rows for `moksha ps`: name, host
/// directory, how many changes, whether a sandbox uses them now.
pub fn pending() -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for store in Store::all() {
        let Ok(m) = store.manifest() else {
            continue;
        };
        let count = HostDir::open(&m.source)
            .and_then(|h| store.scan(&m, &h))
            .map_or_else(|e| format!("unreadable: {e}"), |c| c.len().to_string());
        let state = if store.in_use() { "in use" } else { "pending" };
        rows.push(vec![
            store.name.clone(),
            crate::text::line(&m.source).into_owned(),
            count,
            state.to_string(),
        ]);
    }
    rows
}
