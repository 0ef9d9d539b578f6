//! "Did you mean": the known names nearest to a misspelt one, for the
//! messages about syscalls, functions, option keys and modules. Pure.

/// Edit distance that counts swapping two neighbouring letters as one edit
/// (optimal string alignment): transpositions are the commonest typo
/// (`netwrok`, `bsae`), and plain Levenshtein charges them two.
pub fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    // Three rows: the one before last is needed for transpositions.
    let mut before: Vec<usize> = Vec::new();
    let mut last: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut row = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            row[j] = (last[j] + 1).min(row[j - 1] + 1).min(last[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                row[j] = row[j].min(before[j - 2] + 1);
            }
        }
        before = std::mem::replace(&mut last, row);
    }
    last[b.len()]
}

/// The candidates nearest to `name`, if they are near enough to be what was
/// meant: at most one edit per three letters, so a name of one or two
/// letters (`ro`) or plain garbage gets no suggestion. Equally near ones are
/// all returned (sorted, at most three).
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    // The distance of what is found so far, starting at the most allowed.
    let mut best = name.chars().count() / 3;
    let mut found: Vec<&str> = Vec::new();
    for c in candidates {
        let d = distance(name, c);
        if d == 0 || d > best {
            continue;
        }
        if d < best {
            best = d;
            found.clear();
        }
        found.push(c);
    }
    found.sort_unstable();
    found.dedup();
    found.truncate(3);
    found
}

/// `; did you mean "x"?` (or `"x" or "y"`) to append to a message, or
/// nothing when no candidate is near.
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    let near = closest(name, candidates);
    if near.is_empty() {
        return String::new();
    }
    let quoted: Vec<String> = near.iter().map(|c| format!("{c:?}")).collect();
    format!("; did you mean {}?", quoted.join(" or "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_counts_a_swap_as_one_edit() {
        assert_eq!(distance("netwrok", "network"), 1);
        assert_eq!(distance("bsae", "base"), 1);
        assert_eq!(distance("bnd", "bind"), 1);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("abc", ""), 3);
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("same", "same"), 0);
        assert_eq!(distance("héllo", "hello"), 1);
    }

    #[test]
    fn only_near_names_are_suggested() {
        let known = ["bind", "tmpfs", "network", "rw", "optional"];
        assert_eq!(closest("bnd", known), ["bind"]);
        assert_eq!(closest("netwrok", known), ["network"]);
        assert_eq!(closest("opitonal", known), ["optional"]);
        // Too short to guess, garbage, and an exact name: nothing.
        assert!(closest("ro", known).is_empty());
        assert!(closest("frobnicate", known).is_empty());
        assert!(closest("bind", known).is_empty());
        assert!(closest("", known).is_empty());
        // Ties are all named, once each.
        assert_eq!(closest("abd", ["abc", "abe", "abc"]), ["abc", "abe"]);
        assert_eq!(did_you_mean("bnd", known), "; did you mean \"bind\"?");
        assert_eq!(did_you_mean("xyz", known), "");
    }
}
