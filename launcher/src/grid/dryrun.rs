//! The `--dry-run` listing: one line per cell in execution order, then totals.
use super::{CellKind, Grid};
use std::fmt::Write;

pub fn dry_run(grid: &Grid) -> String {
    let mut s = String::new();
    let evals = grid
        .cells
        .iter()
        .filter(|c| matches!(c.kind, CellKind::Evaluate { .. }))
        .count();
    let _ = writeln!(
        s,
        "grid `{}` ({}): {} cells ({} train, {} evaluate)",
        grid.name,
        grid.source.display(),
        grid.cells.len(),
        grid.cells.len() - evals,
        evals
    );
    let _ = writeln!(s, "output: {}", grid.output_dir.display());
    let _ = writeln!(
        s,
        "{:>5}  {:<16}  {:<21}  {:<8}  {:<15}  {:<12}  {:>5}  {:>4}  {:>6}  {:>12}  after",
        "#", "id", "protocol", "kind", "dataset", "method", "shots", "seed", "epochs", "cost",
    );
    for (n, c) in grid.cells.iter().enumerate() {
        let kind = match c.kind {
            CellKind::Train => "train",
            CellKind::Evaluate { .. } => "evaluate",
        };
        let after = if c.deps.is_empty() {
            "-".to_string()
        } else {
            c.deps.join(",")
        };
        let _ = writeln!(
            s,
            "{:>5}  {:<16}  {:<21}  {:<8}  {:<15}  {:<12}  {:>5}  {:>4}  {:>6}  {:>12.0}  {}{}",
            n + 1,
            c.id,
            c.protocol.to_string(),
            kind,
            c.spec.dataset,
            c.spec.method.to_string(),
            c.spec.shots,
            c.spec.seed,
            c.spec.epochs,
            c.cost,
            after,
            details(c),
        );
    }
    let _ = writeln!(
        s,
        "total cost estimate: {:.0} (text-encoder prompt passes)",
        grid.total_cost()
    );
    s
}

/// The settings that tell ablation cells apart.
fn details(c: &super::Cell) -> String {
    let mut parts = Vec::new();
    if c.spec.subsample != "all" {
        parts.push(format!("subsample={}", c.spec.subsample));
    }
    if let Some(sub) = &c.spec.subpt {
        parts.push(format!("rank={} early={}", sub.rank, sub.early_epochs));
        if sub.trajectory.is_none() && c.kind == CellKind::Train {
            parts.push("trains its own trajectory".into());
        }
    }
    if let Some(n) = &c.spec.nfl {
        parts.push(format!("nfl={}:{}", n.names, n.lambda));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("  [{}]", parts.join(" "))
    }
}
