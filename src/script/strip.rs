//! The copy of the embedded stdlib that is compiled (build.rs includes
//! this file too): whole-line comments blanked out, code lines unindented.
//!
//! Rhai's tokenizer reads every character on its own (~120 instructions
//! for a space, more in a comment): the stdlib's comments were a tenth of
//! `moksha plan firefox`'s instructions, its indentation 2.5% of `moksha
//! plan chromium`'s. A line whose first non-blank characters start a `//`
//! comment becomes empty, and a code line loses its leading blanks; every
//! line stays where it was, so lines in errors are the same, and the
//! blanks taken from each line's start (`compact`'s table) are added back
//! to columns (`resolver::stdlib_column`); errors show the original text.
//! Lines inside strings (`"...\` continued, backtick strings and their
//! `${...}`) and block comments are kept as they are.

/// Where the scanner is at the end of a line.
#[derive(Clone, Copy, PartialEq)]
enum Ctx {
    /// Code, with the number of `{` open (inside an interpolation, the `}`
    /// that closes it ends the code).
    Code(usize),
    /// A `"` or `'` literal.
    Quoted(u8),
    /// A backtick string.
    Backtick,
}

/// `src` with each line that is only a `//` comment (outside strings and
/// block comments) replaced by an empty line and the leading spaces and
/// tabs of every other such line dropped (at most 255), and per line the
/// number of characters dropped from its start.
pub fn compact(src: &str) -> (String, Vec<u8>) {
    let mut out = String::with_capacity(src.len());
    let mut dropped = Vec::new();
    let mut stack = vec![Ctx::Code(0)];
    let mut block = 0usize;
    for line in src.split_inclusive('\n') {
        let top_level = block == 0 && stack.len() == 1;
        let code = if top_level {
            let blanks = line.len() - line.trim_start_matches([' ', '\t']).len();
            &line[blanks.min(255)..]
        } else {
            line
        };
        if top_level && code.starts_with("//") {
            dropped.push(0);
            if line.ends_with('\n') {
                out.push('\n');
            }
            continue;
        }
        dropped.push((line.len() - code.len()) as u8);
        out.push_str(code);
        scan(code.as_bytes(), &mut stack, &mut block);
    }
    (out, dropped)
}

/// Follows strings, interpolations and block comments through one line.
/// Only ASCII delimiters matter, so scanning bytes is enough for UTF-8.
fn scan(b: &[u8], stack: &mut Vec<Ctx>, block: &mut usize) {
    let mut i = 0;
    while i < b.len() {
        let next = b.get(i + 1).copied();
        if *block > 0 {
            match (b[i], next) {
                (b'*', Some(b'/')) => {
                    *block -= 1;
                    i += 2;
                }
                (b'/', Some(b'*')) => {
                    *block += 1;
                    i += 2;
                }
                _ => i += 1,
            }
            continue;
        }
        let top = *stack.last().expect("the outermost code is never popped");
        match top {
            Ctx::Quoted(q) => {
                if b[i] == b'\\' {
                    i += 1; // the escaped byte, a newline too (a continued line)
                } else if b[i] == q {
                    stack.pop();
                }
            }
            Ctx::Backtick => match (b[i], next) {
                (b'`', Some(b'`')) => i += 1, // a backtick in the string
                (b'`', _) => {
                    stack.pop();
                }
                (b'$', Some(b'{')) => {
                    stack.push(Ctx::Code(0));
                    i += 1;
                }
                _ => {}
            },
            Ctx::Code(depth) => match (b[i], next) {
                (b'/', Some(b'/')) => return,
                (b'/', Some(b'*')) => {
                    *block += 1;
                    i += 1;
                }
                (b'"' | b'\'', _) => stack.push(Ctx::Quoted(b[i])),
                (b'`', _) => stack.push(Ctx::Backtick),
                (b'{', _) => *stack.last_mut().unwrap() = Ctx::Code(depth + 1),
                (b'}', _) if depth == 0 && stack.len() > 1 => {
                    stack.pop();
                }
                (b'}', _) => *stack.last_mut().unwrap() = Ctx::Code(depth.saturating_sub(1)),
                _ => {}
            },
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::compact;

    #[test]
    fn comment_lines_go_and_code_lines_lose_their_indentation() {
        let src = "// a\n  /// doc\nfn f() { 1 } // kept\n    let s = `x\n  // in a string\n${ \"}\" }`;\n\
                   /* block\n// in a block\n*/\n\tlet t = \"a\\\n  // continued\";\n'\"' // c\n// last";
        let (out, dropped) = compact(src);
        assert_eq!(out.split('\n').count(), src.split('\n').count());
        assert_eq!(dropped.len(), src.split('\n').count());
        let kept: Vec<&str> = out.lines().filter(|l| l.contains("//")).collect();
        assert_eq!(
            kept,
            [
                "fn f() { 1 } // kept",
                "  // in a string",
                "// in a block",
                "  // continued\";",
                "'\"' // c"
            ]
        );
        assert!(out.starts_with("\n\nfn f()") && out.ends_with("// c\n"));
        assert!(out.contains("\nlet s = `x\n") && out.contains("\nlet t = "));
        assert_eq!(dropped, [0, 0, 0, 4, 0, 0, 0, 0, 0, 1, 0, 0, 0]);
        // Each line is the original's end: a column plus what its line
        // dropped is the original column.
        for ((o, c), d) in src.split('\n').zip(out.split('\n')).zip(&dropped) {
            assert!(c.is_empty() || o[*d as usize..] == *c, "{o:?} {c:?}");
        }
    }

    #[test]
    fn at_most_255_blanks_are_counted() {
        let src = format!("{}let x = 1;\n", " ".repeat(300));
        let (out, dropped) = compact(&src);
        assert_eq!(dropped, [255]);
        assert_eq!(out, format!("{}let x = 1;\n", " ".repeat(45)));
    }
}
