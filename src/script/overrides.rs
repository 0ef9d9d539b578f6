//! Command-line overrides (`--bind`, `--net`, ...): Rhai run after the
//! profile against the sandbox it created, as `s`, so a flag is exactly the
//! call a profile would make. Each flag is one line of a snippet named
//! `<command line>`; its values reach the code as the constant `V`, never
//! spliced into the code.

use super::api::Sandbox;
use super::Sources;
use rhai::{Dynamic, Engine, EvalAltResult, Scope};
use std::cell::RefCell;

/// The name positions of the overrides carry.
pub const SOURCE: &str = "<command line>";

/// One flag: how the user wrote it, the Rhai code for it, its values.
#[derive(Clone, Debug)]
pub struct Flag {
    pub text: String,
    pub code: &'static str,
    pub values: Vec<String>,
}

/// The flags of one command line, applied in order.
#[derive(Clone, Debug, Default)]
pub struct Overrides(pub Vec<Flag>);

impl Overrides {
    /// The snippet: line N is flag N, ending in a comment that shows the
    /// flag as written (escaped, so a value cannot end the comment).
    fn snippet(&self) -> String {
        self.0
            .iter()
            .enumerate()
            .map(|(i, f)| format!("{{ const V = FLAGS[{i}]; {} }} // {:?}\n", f.code, f.text))
            .collect()
    }

    /// The flag written on line `line` of the snippet.
    pub fn flag_at(&self, line: usize) -> Option<&str> {
        self.0.get(line.checked_sub(1)?).map(|f| f.text.as_str())
    }

    /// Runs the flags against `s`.
    pub fn apply(
        &self,
        engine: &Engine,
        s: &Sandbox,
        sources: &RefCell<Sources>,
    ) -> Result<(), Box<EvalAltResult>> {
        if self.0.is_empty() {
            return Ok(());
        }
        let text = self.snippet();
        sources.borrow_mut().insert(SOURCE.into(), text.clone());
        let flags: rhai::Array = self
            .0
            .iter()
            .map(|f| {
                let values: rhai::Array = f.values.iter().cloned().map(Dynamic::from).collect();
                Dynamic::from_array(values)
            })
            .collect();
        let mut scope = Scope::new();
        scope.push_constant("s", s.clone());
        scope.push_constant("FLAGS", flags);
        // The sandbox's name, for `--home persistent`.
        let name = s.0.borrow().name.clone();
        scope.push_constant("SANDBOX", name);
        let mut ast = engine
            .compile_with_scope(&scope, &text)
            .map_err(|e| EvalAltResult::ErrorParsing(*e.0, e.1))?;
        ast.set_source(SOURCE);
        engine.run_ast_with_scope(&mut scope, &ast)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_never_become_code() {
        let flags = Overrides(vec![Flag {
            text: "--env A=x\ns.exec([\"evil\"]); //".into(),
            code: "s.env(V[0], V[1]);",
            values: vec!["A".into(), "x\n\"); s.exec([\"evil\"]);".into()],
        }]);
        let text = flags.snippet();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.starts_with("{ const V = FLAGS[0]; s.env(V[0], V[1]); } // \"--env A=x\\n"));
        assert_eq!(flags.flag_at(1), Some("--env A=x\ns.exec([\"evil\"]); //"));
        assert_eq!(flags.flag_at(0), None);
        assert_eq!(flags.flag_at(2), None);
    }
}
