//! A small table model written out as CSV, Markdown and LaTeX from the same cells.
//!
//! CSV and Markdown print every column; LaTeX prints what a paper shows (see [`Latex`]): the
//! columns it names, an accuracy's mean and std as one `mean ± std` cell, and the best value
//! of each accuracy column in bold among the rows a row is ranked against ([`Rank`]). Cells
//! stay numbers and names until written, so no writer reads another writer's text.
use std::fmt::Write;

#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    /// A number; `None` prints empty (CSV) or an en dash (Markdown, LaTeX).
    Num(Option<f64>),
    Int(usize),
    /// A name with two spellings: `plain` (what grids and files spell: `coop_sub_nfl`, `dtd`)
    /// in CSV and Markdown, `paper` (as the papers write it: `SubPT+NFL`, `DTD`) in LaTeX.
    Name {
        plain: String,
        paper: String,
    },
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

/// Where a row stands in the LaTeX table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rank {
    /// Rows of one block sit together (one dataset, say); a rule separates blocks.
    pub block: String,
    /// The rows this row's accuracies are ranked against for bold: those with the same key.
    /// `None` ranks it against nothing (an ablation's row beside the paper's settings).
    pub against: Option<String>,
}

/// One column of the LaTeX table, taken from the table's columns by header.
#[derive(Debug, Clone, PartialEq)]
pub enum LatexColumn {
    /// The column `from` as it is, under `header`.
    Plain { header: String, from: String },
    /// An accuracy: the column `mean`, with `std` beside it as `mean ± std` where the row has
    /// one; bold where it is the best of the rows it is ranked against.
    Accuracy {
        header: String,
        mean: String,
        std: Option<String>,
    },
}

impl LatexColumn {
    pub fn plain(header: &str, from: &str) -> Self {
        LatexColumn::Plain {
            header: header.into(),
            from: from.into(),
        }
    }

    pub fn accuracy(header: &str, mean: &str, std: Option<&str>) -> Self {
        LatexColumn::Accuracy {
            header: header.into(),
            mean: mean.into(),
            std: std.map(Into::into),
        }
    }
}

/// What the LaTeX version of a table shows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Latex {
    pub columns: Vec<LatexColumn>,
    /// Sentences for the caption on how to read the LaTeX cells (± and bold); the Markdown
    /// notes describe the CSV's columns, which LaTeX does not all show.
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// File stem of the outputs (`<name>.csv`, `<name>.md`, `<name>.tex`).
    pub name: String,
    pub title: String,
    /// Conventions a reader needs (how std and HM are computed...).
    pub notes: Vec<String>,
    /// What the runs behind the table were (weights, shots, seeds): under the title in
    /// Markdown, in the caption in LaTeX.
    pub context: Vec<String>,
    pub headers: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
    /// Per row, its place in the LaTeX table; rows added without [`Table::push`] have none
    /// (no bold, no rules).
    pub ranks: Vec<Rank>,
    /// The LaTeX layout; `None` writes every column as it is.
    pub latex: Option<Latex>,
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
            context: Vec::new(),
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
            ranks: Vec::new(),
            latex: None,
        }
    }

    /// Adds a row with its place in the LaTeX table.
    pub fn push(&mut self, row: Vec<Cell>, rank: Rank) {
        // Rows pushed directly before this one have no rank: pad so indices line up.
        self.ranks.resize(self.rows.len(), Rank::default());
        self.rows.push(row);
        self.ranks.push(rank);
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
        for n in self.context.iter().chain(&self.notes) {
            let _ = writeln!(s, "{n}");
        }
        if !(self.notes.is_empty() && self.context.is_empty()) {
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
        Cell::Name { plain, .. } => plain.clone(),
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
        t.push(
            vec![
                Cell::Name {
                    plain: "coop_sub".into(),
                    paper: "SubPT".into(),
                },
                1.0.into(),
            ],
            Rank::default(),
        );
        assert_eq!(t.to_csv(), "a,b\n\"x,y\",1.2346\nz,\ncoop_sub,1.0000\n");
        let md = t.to_markdown();
        assert!(md.contains("| x,y | 1.23 |"), "{md}");
        assert!(md.contains("| z | – |"), "{md}");
        assert!(md.contains("| coop_sub | 1.00 |"), "{md}");
        // Rows pushed without a rank line up with those pushed with one.
        assert_eq!(t.ranks.len(), t.rows.len());
    }
}
