//! Published numbers (`results/reference/*.csv`) beside ours, with every imported HM
//! recomputed from its base and novel accuracy.
use super::b2n::B2nRow;
use super::label::MethodKey;
use super::table::Table;
use std::collections::BTreeMap;
use std::path::Path;
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

/// Reference rows per file (stem) and our dataset-averaged base-to-novel rows in one
/// table. `check` flags an imported HM that differs from the recomputed one.
pub fn comparison(
    references: &[(String, Vec<ReferenceRow>)],
    measured: &BTreeMap<(usize, MethodKey), B2nRow>,
) -> Table {
    let mut t = Table::new(
        "reference_b2n",
        "Base-to-novel averages: published against measured",
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
    t.notes.push(format!(
        "hm (recomputed) = 2·base·novel/(base+novel); `check` says MISMATCH when the file's hm \
         differs by more than {HM_TOLERANCE}."
    ));
    for (file, rows) in references {
        for r in rows {
            let hm = harmonic_mean(r.base, r.novel);
            let check = match r.hm {
                Some(h) if (h - hm).abs() > HM_TOLERANCE => format!("MISMATCH (file {h})"),
                Some(_) => "ok".to_string(),
                None => "no hm in file".to_string(),
            };
            t.rows.push(vec![
                file.as_str().into(),
                r.method.as_str().into(),
                r.base.into(),
                r.novel.into(),
                r.hm.into(),
                hm.into(),
                check.into(),
                r.source.as_str().into(),
            ]);
        }
    }
    for ((shots, m), r) in measured {
        t.rows.push(vec![
            format!("measured ({shots} shots)").into(),
            m.label().into(),
            r.base.into(),
            r.novel.into(),
            None.into(),
            r.hm.into(),
            "".into(),
            format!("this report, mean over {} datasets", r.n).into(),
        ]);
    }
    t
}
