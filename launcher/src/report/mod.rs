//! `subpt-bench report`: tables (CSV and Markdown) and SVG plots from the `result.json`
//! files of a results directory, with published reference numbers beside ours.
pub mod ablation;
pub mod b2n;
pub mod collect;
pub mod fewshot;
pub mod label;
pub mod plots;
pub mod reference;
pub mod stats;
pub mod table;

use std::path::{Path, PathBuf};
use subpt_trainer::io::write_atomic;
use table::Table;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("plot {file}: {message}")]
    Plot { file: String, message: String },
    #[error("{dir}: no valid result.json below it ({skipped} skipped), so no report")]
    NoResults { dir: String, skipped: usize },
}

/// What a report run produced.
#[derive(Debug, Default)]
pub struct Summary {
    /// Accepted runs.
    pub runs: usize,
    /// Skipped files and other things a reader should know, one line each.
    pub warnings: Vec<String>,
    /// Files written, in order.
    pub written: Vec<PathBuf>,
}

/// Every table the report writes, in the order of `index.md`.
pub struct Tables {
    pub fewshot: Table,
    pub base_to_novel: Table,
    pub domain_generalisation: Table,
    pub ablations: Table,
    pub reference: Table,
}

/// Reads `results` (every `result.json` below it) and the reference CSVs in `reference`
/// (a missing directory means none), and writes tables under `out` and plots under
/// `out/plots`.
pub fn generate(results: &Path, reference: &Path, out: &Path) -> Result<Summary, ReportError> {
    let collected = collect::collect(results)?;
    if collected.runs.is_empty() {
        for w in &collected.warnings {
            tracing::warn!("{w}");
        }
        return Err(ReportError::NoResults {
            dir: results.display().to_string(),
            skipped: collected.warnings.len(),
        });
    }
    let mut warnings = collected.warnings;
    let runs = &collected.runs;

    let fs = fewshot::FewShot::gather(runs, &mut warnings);
    let bn = b2n::BaseToNovel::gather(runs, &mut warnings);
    let refs = read_references(reference, &mut warnings);
    let tables = Tables {
        fewshot: fs.table(),
        base_to_novel: bn.table(),
        domain_generalisation: fewshot::domain_generalisation(runs, &mut warnings),
        ablations: ablation::ablations(runs, &mut warnings),
        reference: reference::comparison(&refs, &bn.averages()),
    };

    // Tables share runs, so one repeated seed is reported once.
    let mut seen = std::collections::HashSet::new();
    warnings.retain(|w| seen.insert(w.clone()));

    let mut written = Vec::new();
    let mut put = |path: PathBuf, bytes: &[u8]| -> Result<(), ReportError> {
        write_atomic(&path, bytes).map_err(|source| ReportError::Io {
            path: path.display().to_string(),
            source,
        })?;
        written.push(path);
        Ok(())
    };
    let all = [
        &tables.fewshot,
        &tables.base_to_novel,
        &tables.domain_generalisation,
        &tables.ablations,
        &tables.reference,
    ];
    let mut index = format!(
        "# Benchmark report\n\n{} runs from `{}`.\n\n",
        runs.len(),
        results.display()
    );
    for t in all {
        put(out.join(format!("{}.csv", t.name)), t.to_csv().as_bytes())?;
        put(
            out.join(format!("{}.md", t.name)),
            t.to_markdown().as_bytes(),
        )?;
        index.push_str(&t.to_markdown());
        index.push('\n');
    }
    if !warnings.is_empty() {
        index.push_str("## Skipped\n\n");
        for w in &warnings {
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
    })
}

/// Every `*.csv` in `dir`, by file stem; unreadable ones become warnings so one bad
/// reference file does not block the report.
fn read_references(
    dir: &Path,
    warnings: &mut Vec<String>,
) -> Vec<(String, Vec<reference::ReferenceRow>)> {
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
        .filter_map(|p| match reference::read_reference(&p) {
            Ok(rows) => {
                let stem = p
                    .file_stem()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                Some((stem, rows))
            }
            Err(e) => {
                warnings.push(format!("skipping reference {e}"));
                None
            }
        })
        .collect()
}
