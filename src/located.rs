//! Values together with the script position that produced them: what every
//! layer (the plan, the security policy, the launcher's errors) uses to
//! point a message at a profile's line.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Where in a script a step was created: the file as the user knows it
/// (a path, or `<stdlib>/base.rhai`), 1-based line and column.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct Pos {
    pub file: String,
    pub line: usize,
    pub col: usize,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A file's name is shared text, on one line (`text::line`).
        let file = crate::text::line(&self.file);
        // Line 0: not from a script (e.g. a command line).
        if self.line == 0 {
            return f.write_str(&file);
        }
        write!(f, "{file}:{}:{}", self.line, self.col)
    }
}

#[cfg(test)]
impl Pos {
    /// `p.rhai:LINE:COL`, for tests.
    pub fn in_test(line: usize, col: usize) -> Pos {
        Pos {
            file: "p.rhai".into(),
            line,
            col,
        }
    }
}

/// A structured value (a filesystem step, the command) together with the
/// script position that produced it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Step<T> {
    #[serde(flatten)]
    pub op: T,
    pub at: Pos,
}

/// A plain string setting (a path, a name) and the script position that set it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Located {
    pub value: String,
    pub at: Pos,
}
