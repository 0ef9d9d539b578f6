//! The difference between two plans' grants: what one has that the other
//! has not, and what both have but differently. Grants are compared by
//! kind and key (a path inside, a variable, a syscall group), their text
//! by what the program gets; where a grant was made is not compared (a
//! profile moved to a library grants the same).

use super::{Grant, Report};
use serde::Serialize;

#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Diff {
    pub a: String,
    pub b: String,
    pub score_a: u32,
    pub score_b: u32,
    /// Granted by A only.
    pub only_a: Vec<Grant>,
    /// Granted by B only.
    pub only_b: Vec<Grant>,
    /// Granted by both, differently: (A's, B's).
    pub changed: Vec<(Grant, Grant)>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.only_a.is_empty() && self.only_b.is_empty() && self.changed.is_empty()
    }
}

pub fn diff(a: &Report, b: &Report) -> Diff {
    let find = |list: &[Grant], g: &Grant| {
        list.iter()
            .find(|x| x.kind == g.kind && x.key == g.key)
            .cloned()
    };
    let mut only_a = Vec::new();
    let mut changed = Vec::new();
    for g in &a.grants {
        match find(&b.grants, g) {
            None => only_a.push(g.clone()),
            Some(other) if other.what != g.what => changed.push((g.clone(), other)),
            Some(_) => {}
        }
    }
    let only_b = b
        .grants
        .iter()
        .filter(|g| find(&a.grants, g).is_none())
        .cloned()
        .collect();
    Diff {
        a: a.profile.clone(),
        b: b.profile.clone(),
        score_a: a.score.total,
        score_b: b.score.total,
        only_a,
        only_b,
        changed,
    }
}
