//! `moksha explain`: what a program in the sandbox can reach, as a list of
//! grants a user reads in a minute, an exposure score, and the difference
//! between two plans. A pure view of a (resolved) plan: nothing here reads
//! the host.
//!
//! | module  | holds                                                   |
//! |---------|---------------------------------------------------------|
//! | grants  | the plan turned into grants: kind, key, what, where     |
//! | score   | the exposure score and its documented weights           |
//! | diff    | the grants one plan has that another has not            |
//! | render  | the text and JSON forms                                 |

pub mod cause;
pub mod diff;
pub mod grants;
pub mod learn;
mod render;
pub mod score;

pub use diff::{diff, Diff};
pub use grants::{grants, Grant, Kind};
pub use render::{json, json_diff, text, text_diff, text_diff_as, Sides, A_B, BEFORE_AFTER};
pub use score::{score, Score};

use crate::plan::Plan;
use serde::Serialize;

/// What `explain` knows beside the plan: the user's home on the host
/// (a bind of it, or of a directory above it, weighs most).
#[derive(Clone, Debug, Default)]
pub struct Context {
    pub home: Option<String>,
}

/// Everything `moksha explain` shows of one plan.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Report {
    pub sandbox: String,
    pub profile: String,
    pub grants: Vec<Grant>,
    pub score: Score,
}

impl Report {
    pub fn of(plan: &Plan, ctx: &Context) -> Report {
        let grants = grants(plan, ctx);
        let score = score(&grants);
        Report {
            sandbox: plan.name.clone(),
            profile: plan.profile.clone(),
            grants,
            score,
        }
    }
}

#[cfg(test)]
mod tests;
