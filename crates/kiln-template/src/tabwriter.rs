//! docker's table alignment: Go's `text/tabwriter` with minwidth 10,
//! padding 3, spaces.

/// Aligns tab-separated cells into columns: each column as wide as its
/// widest cell plus 3, at least 10; a line's last cell is not padded.
/// (Go aligns each run of lines sharing a column separately; docker's tables
/// have the same columns on every line, so one width per column suffices.)
pub fn tabwrite(text: &str) -> String {
    const MIN_WIDTH: usize = 10;
    const PADDING: usize = 3;
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    let mut widths: Vec<usize> = Vec::new();
    for cells in &lines {
        // Only tab-terminated cells (all but the last) form columns.
        for (i, cell) in cells.iter().take(cells.len().saturating_sub(1)).enumerate() {
            let w = (cell.chars().count() + PADDING).max(MIN_WIDTH);
            match widths.get_mut(i) {
                Some(slot) => *slot = (*slot).max(w),
                None => widths.push(w),
            }
        }
    }
    let mut out = String::new();
    for cells in &lines {
        let last = cells.len().saturating_sub(1);
        for (i, cell) in cells.iter().enumerate() {
            out.push_str(cell);
            if i < last {
                let pad = widths[i] - cell.chars().count();
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    }
    out
}
