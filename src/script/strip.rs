//! Whole-line comments blanked out of a Rhai source, for the copy of the
//! embedded stdlib that is compiled (build.rs includes this file too).
//!
//! Rhai's tokenizer reads a comment character by character: the stdlib's
//! comments were a tenth of `moksha plan firefox`'s instructions. A line
//! whose first non-blank characters start a `//` comment becomes empty;
//! every line stays where it was, so positions in errors are the same,
//! and errors show the original text. Lines inside strings (`"...\`
//! continued, backtick strings and their `${...}`) and block comments are
//! kept as they are.

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
/// block comments) replaced by an empty line.
pub fn blank_comment_lines(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut stack = vec![Ctx::Code(0)];
    let mut block = 0usize;
    for line in src.split_inclusive('\n') {
        let top_level = block == 0 && stack.len() == 1;
        if top_level && line.trim_start().starts_with("//") {
            if line.ends_with('\n') {
                out.push('\n');
            }
            continue;
        }
        out.push_str(line);
        scan(line.as_bytes(), &mut stack, &mut block);
    }
    out
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
    use super::blank_comment_lines;

    #[test]
    fn only_comment_lines_outside_strings_go() {
        let src =
            "// a\n  /// doc\nfn f() { 1 } // kept\nlet s = `x\n// in a string\n${ \"}\" }`;\n\
                   /* block\n// in a block\n*/\nlet t = \"a\\\n// continued\";\n'\"' // c\n// last";
        let out = blank_comment_lines(src);
        assert_eq!(out.split('\n').count(), src.split('\n').count());
        let kept: Vec<&str> = out.lines().filter(|l| l.contains("//")).collect();
        assert_eq!(
            kept,
            [
                "fn f() { 1 } // kept",
                "// in a string",
                "// in a block",
                "// continued\";",
                "'\"' // c"
            ]
        );
        assert!(out.starts_with("\n\nfn f()") && out.ends_with("// c\n"));
    }
}
