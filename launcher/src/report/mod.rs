//! `subpt-bench report`: tables (CSV, Markdown and LaTeX) and SVG plots from the
//! `result.json` files of a results directory, with published reference numbers beside ours
//! for the protocol they were published under.
pub mod ablation;
pub mod b2n;
pub mod claims;
pub mod collect;
pub mod describe;
pub mod dg;
pub mod fewshot;
pub mod label;
pub mod latex;
pub mod plots;
pub mod reference;
pub mod rows;
pub mod stats;
pub mod table;

use std::path::{Path, PathBuf};
use subpt_trainer::io::write_atomic;
use table::Table;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Io(#[from] subpt_trainer::io::IoError),
    #[error("plot {file}: {message}")]
    Plot { file: String, message: String },
    #[error("{dir}: no valid result.json below it ({skipped} skipped{}), so no report", match left_out { 0 => String::new(), n => format!(", {n} of cells not in the grid: --all includes them") })]
    NoResults {
        dir: String,
        skipped: usize,
        left_out: usize,
    },
}

/// The claims a report found (see `claims`), under the report directory.
pub const CLAIMS_JSON: &str = "claims.json";

/// What a report run produced.
#[derive(Debug, Default)]
pub struct Summary {
    /// Accepted runs.
    pub runs: usize,
    /// Skipped files and other things a reader should know, one line each.
    pub warnings: Vec<String>,
    /// Files written, in order.
    pub written: Vec<PathBuf>,
    /// Valid results left out (cells not in the grid reported on), one line each.
    pub left_out: Vec<String>,
}

/// Every table the report writes.
pub struct Tables {
    pub fewshot: Table,
    /// One per protocol, each followed by the comparison with its published averages where
    /// the reference directory has them.
    pub base_to_novel: Vec<Table>,
    pub domain_generalisation: Table,
    pub ablations: Table,
}

impl Tables {
    /// In the order of `index.md`.
    pub fn all(&self) -> Vec<&Table> {
        let mut out = vec![&self.fewshot];
        out.extend(&self.base_to_novel);
        out.push(&self.domain_generalisation);
        out.push(&self.ablations);
        out
    }
}

/// Each protocol's base-to-novel table, then its published averages beside ours; a protocol
/// with published averages and no runs here gets the published rows alone.
fn base_to_novel_tables(
    measured: &[b2n::BaseToNovel],
    published: &[reference::Published],
) -> Vec<Table> {
    let mut out = Vec::new();
    for m in measured {
        let refs = published.iter().find(|p| p.protocol == m.protocol);
        let note = match refs {
            Some(p) => format!(
                "Published averages of this protocol (`{}`) beside ours: `reference_{}`.",
                p.file, m.protocol
            ),
            None => format!(
                "No published averages of this protocol in the reference directory (no `{}.csv`), \
                 so no comparison table.",
                m.protocol
            ),
        };
        out.push(m.table(&note));
        if let Some(p) = refs {
            out.push(reference::comparison(p, Some(m)));
        }
    }
    for p in published {
        if !measured.iter().any(|m| m.protocol == p.protocol) {
            out.push(reference::comparison(p, None));
        }
    }
    out
}

/// Reads `results` (every `result.json` below it that `scope` covers) and the reference CSVs
/// in `reference` (a missing directory means none), and writes tables under `out` and plots
/// under `out/plots`.
pub fn generate(
    results: &Path,
    reference: &Path,
    out: &Path,
    scope: &collect::Scope,
) -> Result<Summary, ReportError> {
    let mut collected = collect::collect(results, scope)?;
    label::distinguish(&mut collected.runs);
    if collected.runs.is_empty() {
        for w in &collected.warnings {
            tracing::warn!("{w}");
        }
        return Err(ReportError::NoResults {
            dir: results.display().to_string(),
            skipped: collected.warnings.len(),
            left_out: collected.left_out.len(),
        });
    }
    let mut warnings = collected.warnings;
    let runs = &collected.runs;

    let fs = fewshot::FewShot::gather(runs, &mut warnings);
    let bn = b2n::BaseToNovel::gather(runs, &mut warnings);
    let refs = read_references(reference, &mut warnings);
    let tables = Tables {
        fewshot: fs.table(),
        base_to_novel: base_to_novel_tables(&bn, &refs),
        domain_generalisation: dg::domain_generalisation(runs, &mut warnings),
        ablations: ablation::ablations(runs, &mut warnings),
    };

    // Tables share runs, so one repeated seed is reported once.
    let mut seen = std::collections::HashSet::new();
    warnings.retain(|w| seen.insert(w.clone()));

    let mut written = Vec::new();
    let mut put = |path: PathBuf, bytes: &[u8]| -> Result<(), ReportError> {
        write_atomic(&path, bytes)?;
        written.push(path);
        Ok(())
    };
    let all = tables.all();
    let claims = claims::gather(runs);
    let claim_tables = match claims.is_empty() {
        true => Vec::new(),
        false => claims::tables(&claims),
    };
    let mut index = format!(
        "# Benchmark report\n\n{} runs from `{}`.\n\nEach table is written as `<name>.csv`, \
         `<name>.md` and `<name>.tex` (a booktabs table to paste into a paper); the claims' \
         tables as `claims.md` (with `claims.json`) and `<name>.tex`:\n\n",
        runs.len(),
        results.display()
    );
    for t in all.iter().copied().chain(&claim_tables) {
        index.push_str(&format!("- `{}`: {}\n", t.name, t.title));
    }
    index.push('\n');
    for t in &all {
        put(out.join(format!("{}.csv", t.name)), t.to_csv().as_bytes())?;
        put(
            out.join(format!("{}.md", t.name)),
            t.to_markdown().as_bytes(),
        )?;
        put(
            out.join(format!("{}.tex", t.name)),
            latex::write(t).as_bytes(),
        )?;
        index.push_str(&t.to_markdown());
        index.push('\n');
    }
    if !claims.is_empty() {
        let json = serde_json::to_string_pretty(&claims).expect("claims serialise");
        put(out.join(CLAIMS_JSON), json.as_bytes())?;
        let mut md = String::new();
        for t in &claim_tables {
            md.push_str(&t.to_markdown());
            md.push('\n');
            put(
                out.join(format!("{}.tex", t.name)),
                latex::write(t).as_bytes(),
            )?;
        }
        put(out.join("claims.md"), md.as_bytes())?;
        index.push_str(&md);
    }
    if !warnings.is_empty() {
        index.push_str("## Skipped\n\n");
        for w in &warnings {
            index.push_str(&format!("- {w}\n"));
        }
    }
    if !collected.left_out.is_empty() {
        index.push_str(
            "## Left out\n\nResults below the directory from cells not in this grid \
             (`subpt-bench report --all` includes them):\n\n",
        );
        for w in &collected.left_out {
            index.push_str(&format!("- {w}\n"));
        }
    }

    let plot_err = |message: String| ReportError::Plot {
        file: "plots".into(),
        message,
    };
    let mut charts = plots::fewshot_plots(&fs).map_err(plot_err)?;
    charts.extend(plots::curve_plots(runs).map_err(plot_err)?);
    charts.extend(plots::pca_plots(runs).map_err(plot_err)?);
    for c in &charts {
        put(out.join("plots").join(&c.file), c.svg.as_bytes())?;
    }
    put(out.join("index.md"), index.as_bytes())?;

    Ok(Summary {
        runs: runs.len(),
        warnings,
        written,
        left_out: collected.left_out.clone(),
    })
}

/// Tells the person at the console what the report skipped and left out.
pub fn print_left_out(summary: &Summary) {
    for w in &summary.warnings {
        tracing::warn!("{w}");
    }
    if !summary.left_out.is_empty() {
        println!(
            "report: left out {} result(s) of cells not in the grid (`report --all` includes them):",
            summary.left_out.len()
        );
        for l in &summary.left_out {
            println!("  {l}");
        }
    }
}

/// Every `*.csv` in `dir`, each the published numbers of the protocol its stem names;
/// unreadable or unnamed ones become warnings so one bad reference file does not block the
/// report.
fn read_references(dir: &Path, warnings: &mut Vec<String>) -> Vec<reference::Published> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        .collect();
    files.sort();
    files
        .into_iter()
        .filter_map(|p| {
            let read = reference::protocol_of_file(&p).and_then(|protocol| {
                Ok(reference::Published {
                    protocol,
                    file: p.file_name().unwrap_or_default().to_string_lossy().into(),
                    rows: reference::read_reference(&p)?,
                })
            });
            read.map_err(|e| warnings.push(format!("skipping reference {e}")))
                .ok()
        })
        .collect()
}
