//! A report table as LaTeX to paste into a paper: a booktabs `table` environment with its
//! caption and label, accuracies as `mean ± std`, the best of each accuracy column in bold.
use super::table::{Cell, LatexColumn, Rank, Table};
use std::collections::BTreeMap;
use std::fmt::Write;

/// Digits after the point, as the papers print accuracies.
const DECIMALS: usize = 2;

/// `text` with LaTeX's special characters escaped, and the few non-ASCII symbols the report
/// writes (λ in labels, ± and · in notes) in math mode, so the file compiles without
/// packages beyond booktabs.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\textbackslash{}"),
            '~' => out.push_str("\\textasciitilde{}"),
            '^' => out.push_str("\\textasciicircum{}"),
            '_' | '%' | '&' | '#' | '$' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            // OT1, LaTeX's default font encoding, prints these as other glyphs.
            '<' => out.push_str("\\textless{}"),
            '>' => out.push_str("\\textgreater{}"),
            '|' => out.push_str("\\textbar{}"),
            'λ' => out.push_str("$\\lambda$"),
            '±' => out.push_str("$\\pm$"),
            '·' => out.push_str("$\\cdot$"),
            '≥' => out.push_str("$\\geq$"),
            '–' => out.push_str("--"),
            _ => out.push(c),
        }
    }
    out
}

/// Caption text: escaped, with Markdown's `code` spans in typewriter type.
fn caption_text(text: &str) -> String {
    text.split('`')
        .enumerate()
        .map(|(i, part)| match i % 2 {
            0 => escape(part),
            _ => format!("\\texttt{{{}}}", escape(part)),
        })
        .collect()
}

/// A resolved column: where its cells come from in the table.
enum Col {
    Plain(usize),
    Accuracy { mean: usize, std: Option<usize> },
}

fn columns(t: &Table) -> Vec<(String, Col)> {
    let Some(layout) = &t.latex else {
        return t
            .headers
            .iter()
            .enumerate()
            .map(|(i, h)| (h.clone(), Col::Plain(i)))
            .collect();
    };
    layout
        .columns
        .iter()
        .filter_map(|c| match c {
            LatexColumn::Plain { header, from } => {
                Some((header.clone(), Col::Plain(t.column(from)?)))
            }
            LatexColumn::Accuracy { header, mean, std } => Some((
                header.clone(),
                Col::Accuracy {
                    mean: t.column(mean)?,
                    std: std.as_deref().and_then(|s| t.column(s)),
                },
            )),
        })
        .collect()
}

fn number(cell: Option<&Cell>) -> Option<f64> {
    match cell {
        Some(Cell::Num(x)) => *x,
        _ => None,
    }
}

/// An accuracy as printed, so values that print the same tie for bold.
fn printed(x: f64) -> i64 {
    (x * 10f64.powi(DECIMALS as i32)).round() as i64
}

/// Per accuracy column (by its index in `cols`) and rank key: the best printed value, where
/// at least two rows compete (bold on a row compared with nothing says nothing).
fn best(t: &Table, cols: &[(String, Col)]) -> BTreeMap<(usize, String), i64> {
    let mut values: BTreeMap<(usize, String), Vec<i64>> = BTreeMap::new();
    for (row, rank) in t.rows.iter().zip(&t.ranks) {
        let Some(key) = &rank.against else { continue };
        for (c, (_, col)) in cols.iter().enumerate() {
            if let Col::Accuracy { mean, .. } = col {
                if let Some(x) = number(row.get(*mean)) {
                    values.entry((c, key.clone())).or_default().push(printed(x));
                }
            }
        }
    }
    values
        .into_iter()
        .filter(|(_, v)| v.len() >= 2)
        .filter_map(|(k, v)| v.into_iter().max().map(|m| (k, m)))
        .collect()
}

fn plain(cell: Option<&Cell>) -> String {
    let text = match cell {
        None | Some(Cell::Num(None)) => "--".to_string(),
        Some(Cell::Text(s)) => escape(s),
        Some(Cell::Name { paper, .. }) => escape(paper),
        Some(Cell::Num(Some(x))) => format!("{x:.DECIMALS$}"),
        Some(Cell::Int(i)) => i.to_string(),
    };
    // `\\` reads a following `[` as its optional argument: keep a cell's own bracket text.
    match text.starts_with('[') {
        true => format!("{{{text}}}"),
        false => text,
    }
}

/// Text columns left, numbers right.
fn align(t: &Table, col: &Col) -> char {
    let Col::Plain(i) = col else { return 'r' };
    let numeric = t
        .rows
        .iter()
        .filter_map(|r| r.get(*i))
        .filter(|c| !matches!(c, Cell::Text(s) if s.is_empty()))
        .all(|c| matches!(c, Cell::Num(_) | Cell::Int(_)));
    match numeric && !t.rows.is_empty() {
        true => 'r',
        false => 'l',
    }
}

/// The table as a booktabs `table` environment; the caption is the title, then what the runs
/// were, then how to read the cells; the label is `tab:<name>`.
pub fn write(t: &Table) -> String {
    let cols = columns(t);
    let best = best(t, &cols);
    let mut caption: Vec<String> = vec![format!("{}.", t.title.trim_end_matches('.'))];
    caption.extend(t.context.iter().cloned());
    match &t.latex {
        Some(l) => caption.extend(l.notes.iter().cloned()),
        // Every column is shown: the notes on them apply as written.
        None => caption.extend(t.notes.iter().cloned()),
    }
    let caption: Vec<String> = caption.iter().map(|s| caption_text(s)).collect();

    let mut s = String::new();
    let _ = writeln!(
        s,
        "% {}: written by `subpt-bench report`; needs \\usepackage{{booktabs}}.",
        t.name
    );
    s.push_str("\\begin{table}[t]\n\\centering\n");
    let _ = writeln!(s, "\\caption{{{}}}", caption.join(" "));
    let _ = writeln!(s, "\\label{{tab:{}}}", t.name);
    let spec: String = cols.iter().map(|(_, c)| align(t, c)).collect();
    let _ = writeln!(s, "\\begin{{tabular}}{{{spec}}}");
    s.push_str("\\toprule\n");
    let headers: Vec<String> = cols.iter().map(|(h, _)| caption_text(h)).collect();
    let _ = writeln!(s, "{} \\\\", headers.join(" & "));
    s.push_str("\\midrule\n");
    let none = Rank::default();
    let mut block: Option<&str> = None;
    for (i, row) in t.rows.iter().enumerate() {
        let rank = t.ranks.get(i).unwrap_or(&none);
        if !rank.block.is_empty() {
            if block.is_some_and(|b| b != rank.block) {
                s.push_str("\\midrule\n");
            }
            block = Some(&rank.block);
        }
        let cells: Vec<String> = cols
            .iter()
            .enumerate()
            .map(|(c, (_, col))| match col {
                Col::Plain(j) => plain(row.get(*j)),
                Col::Accuracy { mean, std } => {
                    let Some(m) = number(row.get(*mean)) else {
                        return "--".into();
                    };
                    let mut text = format!("{m:.DECIMALS$}");
                    if let Some(sd) = std.and_then(|j| number(row.get(j))) {
                        let _ = write!(text, " $\\pm$ {sd:.DECIMALS$}");
                    }
                    let top = rank
                        .against
                        .as_ref()
                        .and_then(|k| best.get(&(c, k.clone())));
                    match top == Some(&printed(m)) {
                        true => format!("\\textbf{{{text}}}"),
                        false => text,
                    }
                }
            })
            .collect();
        let _ = writeln!(s, "{} \\\\", cells.join(" & "));
    }
    if t.rows.is_empty() {
        let _ = writeln!(s, "\\multicolumn{{{}}}{{c}}{{(no runs)}} \\\\", cols.len());
    }
    s.push_str("\\bottomrule\n\\end{tabular}\n\\end{table}\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::table::Latex;

    fn name(plain: &str, paper: &str) -> Cell {
        Cell::Name {
            plain: plain.into(),
            paper: paper.into(),
        }
    }

    fn rank(block: &str, against: Option<&str>) -> Rank {
        Rank {
            block: block.into(),
            against: against.map(Into::into),
        }
    }

    /// Two datasets, three methods each, one an ablation; accuracy with std.
    fn table() -> Table {
        let mut t = Table::new(
            "base_to_novel_cocoop",
            "Base-to-novel accuracy (%), CoCoOp's protocol (`base_to_novel_cocoop`: 16 shots)",
            &["dataset", "method", "base", "base std", "hm"],
        );
        t.context
            .push("Our runs: weights `shapes-clip.safetensors`; seeds 1, 2, 3.".into());
        t.latex = Some(Latex {
            columns: vec![
                LatexColumn::plain("Dataset", "dataset"),
                LatexColumn::plain("Method", "method"),
                LatexColumn::accuracy("Base", "base", Some("base std")),
                LatexColumn::accuracy("HM", "hm", None),
            ],
            notes: vec!["Mean ± std over seeds.".into()],
        });
        let rows = [
            ("dtd", "coop", "CoOp", 80.0, Some(1.234), 60.0, Some("dtd")),
            (
                "dtd",
                "coop_sub_nfl",
                "SubPT+NFL",
                79.996,
                None,
                70.0,
                Some("dtd"),
            ),
            (
                "dtd",
                "coop_nfl [λ=0.5]",
                "CoOp+NFL [λ=0.5]",
                95.0,
                None,
                90.0,
                None,
            ),
            (
                "eurosat",
                "coop",
                "CoOp",
                50.0,
                Some(2.0),
                40.0,
                Some("eurosat"),
            ),
            (
                "eurosat",
                "zsclip",
                "Zero-shot CLIP",
                55.0,
                None,
                45.0,
                Some("eurosat"),
            ),
        ];
        for (d, plain, paper, base, std, hm, against) in rows {
            t.push(
                vec![
                    d.into(),
                    name(plain, paper),
                    base.into(),
                    std.into(),
                    hm.into(),
                ],
                rank(d, against),
            );
        }
        t
    }

    #[test]
    fn escapes_every_special_character() {
        assert_eq!(
            escape(r"a_b 5% & #1 $x$ {y} ~ ^ \ <|>"),
            r"a\_b 5\% \& \#1 \$x\$ \{y\} \textasciitilde{} \textasciicircum{} \textbackslash{} \textless{}\textbar{}\textgreater{}"
        );
        assert_eq!(
            escape("SubPT [λ=2] ± 1 – 2"),
            r"SubPT [$\lambda$=2] $\pm$ 1 -- 2"
        );
        assert_eq!(
            caption_text("the `base_to_novel` protocol"),
            r"the \texttt{base\_to\_novel} protocol"
        );
    }

    #[test]
    fn accuracies_read_mean_pm_std_and_the_best_of_each_group_is_bold() {
        let tex = write(&table());
        let lines: Vec<&str> = tex.lines().collect();
        // 80.00 and 79.996 print the same: both are the best, both bold; the ablation's 95
        // is ranked against nothing and stays plain.
        assert!(
            lines.contains(&r"dtd & CoOp & \textbf{80.00 $\pm$ 1.23} & 60.00 \\"),
            "{tex}"
        );
        assert!(
            lines.contains(&r"dtd & SubPT+NFL & \textbf{80.00} & \textbf{70.00} \\"),
            "{tex}"
        );
        assert!(
            lines.contains(&r"dtd & CoOp+NFL [$\lambda$=0.5] & 95.00 & 90.00 \\"),
            "{tex}"
        );
        // Bold per group: EuroSAT's best is its own.
        assert!(
            lines.contains(&r"eurosat & CoOp & 50.00 $\pm$ 2.00 & 40.00 \\"),
            "{tex}"
        );
        assert!(
            lines.contains(&r"eurosat & Zero-shot CLIP & \textbf{55.00} & \textbf{45.00} \\"),
            "{tex}"
        );
        // A rule between the blocks, none within one.
        let at = |l: &str| lines.iter().position(|x| x.starts_with(l)).unwrap();
        assert_eq!(lines[at("eurosat & CoOp") - 1], r"\midrule");
        assert_ne!(lines[at("dtd & SubPT") - 1], r"\midrule");
    }

    #[test]
    fn a_booktabs_table_with_caption_and_label() {
        let tex = write(&table());
        for part in [
            "\\begin{table}[t]\n\\centering\n\\caption{",
            r"\label{tab:base_to_novel_cocoop}",
            "\\begin{tabular}{llrr}\n\\toprule\nDataset & Method & Base & HM \\\\\n\\midrule\n",
            "\\bottomrule\n\\end{tabular}\n\\end{table}\n",
        ] {
            assert!(tex.contains(part), "{part} not in {tex}");
        }
        let caption = tex.lines().find(|l| l.starts_with(r"\caption{")).unwrap();
        assert_eq!(
            caption,
            r"\caption{Base-to-novel accuracy (\%), CoCoOp's protocol (\texttt{base\_to\_novel\_cocoop}: 16 shots). Our runs: weights \texttt{shapes-clip.safetensors}; seeds 1, 2, 3. Mean $\pm$ std over seeds.}"
        );
        // The paper names, not the grid names.
        assert!(!tex.contains("coop_sub_nfl"), "{tex}");
    }

    #[test]
    fn a_table_without_layout_prints_every_column_and_its_notes() {
        let mut t = Table::new("claims", "Claims", &["dataset", "holds", "n"]);
        t.notes.push("n counts seeds.".into());
        t.rows.push(vec!["[x]".into(), "yes".into(), 3usize.into()]);
        let tex = write(&t);
        assert!(tex.contains("\\begin{tabular}{llr}"), "{tex}");
        assert!(tex.contains("dataset & holds & n \\\\"), "{tex}");
        assert!(tex.contains("{[x]} & yes & 3 \\\\"), "{tex}");
        assert!(tex.contains(r"\caption{Claims. n counts seeds.}"), "{tex}");
        let empty = write(&Table::new("e", "E", &["a", "b"]));
        assert!(
            empty.contains(r"\multicolumn{2}{c}{(no runs)} \\"),
            "{empty}"
        );
    }
}
