//! Plain-text tables for the terminal: `moksha ps`, `moksha install --list`.

/// Prints rows as columns as wide as their widest cell; the last column is
/// not padded. Every cell is shown as one line of text (`text::line`): a
/// record is ours, but a sandbox given the state dir could write one.
pub fn print(rows: &[Vec<String>], right_aligned: &[usize]) {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|c| crate::text::line(c).into_owned())
                .collect()
        })
        .collect();
    let rows = rows.as_slice();
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            let pad = " ".repeat(widths[c] - cell.chars().count());
            match () {
                _ if c + 1 == columns => line.push_str(cell),
                _ if right_aligned.contains(&c) => line.push_str(&format!("{pad}{cell}  ")),
                _ => line.push_str(&format!("{cell}{pad}  ")),
            }
        }
        println!("{}", line.trim_end());
    }
}
