//! A small table model written out as CSV and Markdown from the same cells.
use std::fmt::Write;

#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    /// A number; `None` prints empty (CSV) or an en dash (Markdown).
    Num(Option<f64>),
    Int(usize),
}

impl From<&str> for Cell {
    fn from(s: &str) -> Self {
        Cell::Text(s.to_string())
    }
}
impl From<String> for Cell {
    fn from(s: String) -> Self {
        Cell::Text(s)
    }
}
impl From<f64> for Cell {
    fn from(x: f64) -> Self {
        Cell::Num(Some(x))
    }
}
impl From<Option<f64>> for Cell {
    fn from(x: Option<f64>) -> Self {
        Cell::Num(x)
    }
}
impl From<usize> for Cell {
    fn from(x: usize) -> Self {
        Cell::Int(x)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// File stem of the outputs (`<name>.csv`, `<name>.md`).
    pub name: String,
    pub title: String,
    /// Conventions a reader needs (how std and HM are computed...).
    pub notes: Vec<String>,
    pub headers: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}

/// Digits after the point in CSV (for further processing) and in Markdown (for reading).
const CSV_DECIMALS: usize = 4;
const MD_DECIMALS: usize = 2;

impl Table {
    pub fn new(name: &str, title: &str, headers: &[&str]) -> Self {
        Table {
            name: name.into(),
            title: title.into(),
            notes: Vec::new(),
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Index of a column by header name.
    pub fn column(&self, header: &str) -> Option<usize> {
        self.headers.iter().position(|h| h == header)
    }

    pub fn to_csv(&self) -> String {
        let mut w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(Vec::new());
        let rows = self.rows.iter().map(|row| {
            row.iter()
                .map(|c| render(c, CSV_DECIMALS, ""))
                .collect::<Vec<_>>()
        });
        for r in std::iter::once(self.headers.clone()).chain(rows) {
            w.write_record(&r).expect("writing to memory");
        }
        String::from_utf8(w.into_inner().expect("writing to memory")).expect("UTF-8 cells")
    }

    pub fn to_markdown(&self) -> String {
        let mut s = format!("## {}\n\n", self.title);
        for n in &self.notes {
            let _ = writeln!(s, "{n}");
        }
        if !self.notes.is_empty() {
            s.push('\n');
        }
        let esc = |c: &str| c.replace('|', "\\|");
        let _ = writeln!(
            s,
            "| {} |",
            self.headers
                .iter()
                .map(|h| esc(h))
                .collect::<Vec<_>>()
                .join(" | ")
        );
        let _ = writeln!(s, "|{}", "---|".repeat(self.headers.len()));
        for row in &self.rows {
            let cells: Vec<String> = row
                .iter()
                .map(|c| esc(&render(c, MD_DECIMALS, "–")))
                .collect();
            let _ = writeln!(s, "| {} |", cells.join(" | "));
        }
        if self.rows.is_empty() {
            s.push_str("\n(no runs)\n");
        }
        s
    }
}

fn render(c: &Cell, decimals: usize, missing: &str) -> String {
    match c {
        Cell::Text(t) => t.clone(),
        Cell::Num(Some(x)) => format!("{x:.decimals$}"),
        Cell::Num(None) => missing.to_string(),
        Cell::Int(i) => i.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_and_markdown_hold_the_same_cells() {
        let mut t = Table::new("t", "T", &["a", "b"]);
        t.rows.push(vec!["x,y".into(), Cell::Num(Some(1.23456))]);
        t.rows.push(vec!["z".into(), Cell::Num(None)]);
        assert_eq!(t.to_csv(), "a,b\n\"x,y\",1.2346\nz,\n");
        let md = t.to_markdown();
        assert!(md.contains("| x,y | 1.23 |"), "{md}");
        assert!(md.contains("| z | – |"), "{md}");
    }
}
