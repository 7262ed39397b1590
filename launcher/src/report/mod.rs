//! `subpt-bench report`: tables (CSV and Markdown) and SVG plots from the `result.json`
//! files of a results directory, with published reference numbers beside ours.
pub mod ablation;
pub mod b2n;
pub mod claims;
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

/// Every table the report writes, in the order of `index.md`.
pub struct Tables {
    pub fewshot: Table,
    pub base_to_novel: Table,
    pub domain_generalisation: Table,
    pub ablations: Table,
    pub reference: Table,
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
        write_atomic(&path, bytes)?;
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
    let claims = claims::gather(runs);
    if !claims.is_empty() {
        let json = serde_json::to_string_pretty(&claims).expect("claims serialise");
        put(out.join(CLAIMS_JSON), json.as_bytes())?;
        let mut md = String::new();
        for t in claims::tables(&claims) {
            md.push_str(&t.to_markdown());
            md.push('\n');
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
