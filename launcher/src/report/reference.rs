//! Published numbers (`results/reference/<protocol>.csv`) beside ours of the same protocol,
//! with every imported HM recomputed from its base and novel accuracy.
use super::b2n::BaseToNovel;
use super::describe::protocol_phrase;
use super::table::{Latex, LatexColumn, Rank, Table};
use std::collections::BTreeSet;
use std::path::Path;
use subpt_trainer::data::DatasetName;
use subpt_trainer::engine::presets::Protocol;
use subpt_trainer::engine::result::harmonic_mean;

/// Largest tolerated gap between a file's HM and the HM of its base and novel columns.
pub const HM_TOLERANCE: f64 = 0.01;

#[derive(Debug, Clone, PartialEq)]
pub struct ReferenceRow {
    pub method: String,
    pub base: f64,
    pub novel: f64,
    pub hm: Option<f64>,
    pub source: String,
}

/// Reads a reference CSV with a header naming at least `method`, `base` and `novel`
/// (`hm` and `source` optional); quoted fields may hold commas.
pub fn read_reference(path: &Path) -> Result<Vec<ReferenceRow>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let cols: Vec<String> = reader
        .headers()
        .map_err(|e| format!("{}: {e}", path.display()))?
        .iter()
        .map(str::to_string)
        .collect();
    if cols.iter().all(String::is_empty) {
        return Err(format!("{}: empty file", path.display()));
    }
    let col = |name: &str| cols.iter().position(|c| c == name);
    let need = |name: &str| {
        col(name).ok_or_else(|| format!("{}: header lacks column `{name}`", path.display()))
    };
    let (im, ib, inov) = (need("method")?, need("base")?, need("novel")?);
    let (ih, is) = (col("hm"), col("source"));
    let mut rows = Vec::new();
    for record in reader.records() {
        // The csv crate reports a ragged row with its line; so do we.
        let f = record.map_err(|e| match e.position() {
            Some(p) => format!("{}:{}: {e}", path.display(), p.line()),
            None => format!("{}: {e}", path.display()),
        })?;
        let line = f.position().map_or(0, |p| p.line());
        let at = |idx: usize| -> Result<&str, String> {
            f.get(idx).ok_or_else(|| {
                format!(
                    "{}:{line}: expected {} fields, found {}",
                    path.display(),
                    cols.len(),
                    f.len()
                )
            })
        };
        let num = |idx: usize| -> Result<f64, String> {
            let s = at(idx)?;
            s.parse().map_err(|_| {
                format!(
                    "{}:{line}: `{s}` is not a number in column `{}`",
                    path.display(),
                    cols[idx]
                )
            })
        };
        if f.iter().all(str::is_empty) {
            continue;
        }
        rows.push(ReferenceRow {
            method: at(im)?.to_string(),
            base: num(ib)?,
            novel: num(inov)?,
            hm: match ih {
                Some(h) if !at(h)?.is_empty() => Some(num(h)?),
                _ => None,
            },
            source: match is {
                Some(s) => at(s)?.to_string(),
                None => String::new(),
            },
        });
    }
    Ok(rows)
}

/// The published rows of one protocol: the file `<protocol>.csv` of the reference directory.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    pub protocol: Protocol,
    /// The file's name, for the notes.
    pub file: String,
    pub rows: Vec<ReferenceRow>,
}

/// The base-to-novel protocol a reference file is of: its file stem names it, so published
/// numbers are never shown beside runs of another protocol.
pub fn protocol_of_file(path: &Path) -> Result<Protocol, String> {
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    let known: Vec<&str> = Protocol::ALL
        .iter()
        .filter(|p| p.is_base_to_novel())
        .map(|p| p.name())
        .collect();
    match stem.parse::<Protocol>() {
        Ok(p) if p.is_base_to_novel() => Ok(p),
        _ => Err(format!(
            "{}: the file stem names no base-to-novel protocol ({}); a reference file is \
             `<protocol>.csv`",
            path.display(),
            known.join(", ")
        )),
    }
}

/// The 11 datasets the published base-to-novel averages are over (CoOp's benchmark).
fn papers_datasets() -> BTreeSet<String> {
    DatasetName::COOP_11.iter().map(|d| d.to_string()).collect()
}

/// One protocol's published averages and ours (the dataset-averaged rows of `measured`, its
/// runs) in one table. `check` flags an imported HM that differs from the recomputed one.
pub fn comparison(published: &Published, measured: Option<&BaseToNovel>) -> Table {
    let p = published.protocol;
    let mut t = Table::new(
        &format!("reference_{}", p.name()),
        &format!(
            "Base-to-novel averages over datasets, {}: published against measured",
            protocol_phrase(p)
        ),
        &[
            "origin",
            "method",
            "base",
            "novel",
            "hm (file)",
            "hm (recomputed)",
            "check",
            "source",
        ],
    );
    if let Some(m) = measured {
        t.context.extend(m.runs.sentence());
    }
    t.notes.push(format!(
        "hm (recomputed) = 2·base·novel/(base+novel); `check` says MISMATCH when the file's hm \
         differs by more than {HM_TOLERANCE}."
    ));
    t.notes.push(format!(
        "Published rows: `{}` of the reference directory; each names its source. Measured \
         rows: base and novel averaged over the datasets of this report (source says how \
         many), then their HM.",
        published.file
    ));
    let ours = measured.map(|m| (m.averages(), m.datasets()));
    if ours.as_ref().is_none_or(|(a, _)| a.is_empty()) {
        t.notes
            .push("No runs of this protocol in this report: published rows only.".into());
    }
    // Sources in the caption, not a column: they are sentences, and a paper's table is narrow.
    let mut sources: Vec<(&str, Vec<&str>)> = Vec::new();
    for r in &published.rows {
        match sources.iter_mut().find(|(s, _)| *s == r.source) {
            Some((_, methods)) => methods.push(&r.method),
            None => sources.push((&r.source, vec![&r.method])),
        }
    }
    let sources: Vec<String> = sources
        .iter()
        .map(|(source, methods)| match source.is_empty() {
            true => format!("{}: no source given", methods.join(", ")),
            false => format!("{}: {source}", methods.join(", ")),
        })
        .collect();
    let mut notes = Vec::new();
    if !sources.is_empty() {
        notes.push(format!("Published: {}.", sources.join("; ")));
    }
    let counts: BTreeSet<usize> = ours
        .iter()
        .flat_map(|(a, _)| a.values().map(|r| r.n))
        .collect();
    if !counts.is_empty() {
        let n: Vec<String> = counts.iter().map(usize::to_string).collect();
        notes.push(format!(
            "Measured: averages over the {} datasets of this report.",
            n.join(" or ")
        ));
    }
    notes.push(
        "HM recomputed from base and novel. Bold: the best of each column among the published \
         rows and ours at the papers' settings over all 11 datasets."
            .into(),
    );
    t.latex = Some(Latex {
        columns: vec![
            LatexColumn::plain("", "origin"),
            LatexColumn::plain("Method", "method"),
            LatexColumn::accuracy("Base", "base", None),
            LatexColumn::accuracy("Novel", "novel", None),
            LatexColumn::accuracy("HM", "hm (recomputed)", None),
        ],
        notes,
    });
    let ranked = |block: &str| Rank {
        block: block.into(),
        against: Some(String::new()),
    };
    for r in &published.rows {
        let hm = harmonic_mean(r.base, r.novel);
        let check = match r.hm {
            Some(h) if (h - hm).abs() > HM_TOLERANCE => format!("MISMATCH (file {h})"),
            Some(_) => "ok".to_string(),
            None => "no hm in file".to_string(),
        };
        t.push(
            vec![
                "published".into(),
                r.method.as_str().into(),
                r.base.into(),
                r.novel.into(),
                r.hm.into(),
                hm.into(),
                check.into(),
                r.source.as_str().into(),
            ],
            ranked("published"),
        );
    }
    let all_eleven = papers_datasets();
    for ((shots, m), r) in ours.iter().flat_map(|(a, _)| a) {
        let over = ours.as_ref().and_then(|(_, d)| d.get(&(*shots, m.clone())));
        let comparable = !m.is_ablation() && over == Some(&all_eleven);
        t.push(
            vec![
                format!("measured ({shots} shots)").into(),
                m.cell(),
                r.base.into(),
                r.novel.into(),
                None.into(),
                r.hm.into(),
                "".into(),
                format!("this report, mean over {} datasets", r.n).into(),
            ],
            Rank {
                block: "measured".into(),
                against: comparable.then(String::new),
            },
        );
    }
    t
}
