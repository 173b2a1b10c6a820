//! Column alignment as istioctl prints it (Go's `text/tabwriter` with a space pad
//! character): every column but the last is as wide as its widest cell plus `padding`;
//! the last column is written as is.

pub struct Table {
    padding: usize,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(padding: usize) -> Self {
        Table {
            padding,
            rows: Vec::new(),
        }
    }

    pub fn row<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    pub fn render(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut widths = vec![0usize; columns];
        for row in &self.rows {
            // The last cell of a row is not a column (tabwriter: text after the last tab).
            for (i, cell) in row.iter().enumerate().take(row.len().saturating_sub(1)) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                out.push_str(cell);
                if i + 1 < row.len() {
                    let pad = widths[i] + self.padding - cell.chars().count();
                    out.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_like_tabwriter() {
        let mut t = Table::new(1);
        t.row(["ADDRESSES", "PORT", "MATCH", "DESTINATION"]);
        t.row(["0.0.0.0", "80", "ALL", "PassthroughCluster"]);
        t.row(["10.107.180.168", "15012", "ALL", ""]);
        assert_eq!(
            t.render(),
            "ADDRESSES      PORT  MATCH DESTINATION\n\
             0.0.0.0        80    ALL   PassthroughCluster\n\
             10.107.180.168 15012 ALL   \n"
        );
    }

    #[test]
    fn widths_count_characters_not_bytes() {
        let mut t = Table::new(2);
        t.row(["ä", "x"]);
        t.row(["ab", "y"]);
        assert_eq!(t.render(), "ä   x\nab  y\n");
    }
}
