//! The `--dry-run` listing: one line per cell in execution order, then totals.
use crate::grid::{CellKind, Grid};
use std::fmt::Write;
use subpt_trainer::data::SubsampleClasses;

pub fn dry_run(grid: &Grid) -> String {
    // Which cells a run would skip: the done-check a run starts with (it reads the digest
    // index, but creates no cache where there is none).
    if grid
        .cells
        .first()
        .is_some_and(|c| c.spec.cache_dir.is_dir())
    {
        grid.use_digest_index();
    }
    let done = crate::grid::execute::done_cells(grid);
    let mut s = String::new();
    let of = |k: fn(&CellKind) -> bool| grid.cells.iter().filter(|c| k(&c.kind)).count();
    let evals = of(|k| matches!(k, CellKind::Evaluate { .. }));
    let features = of(|k| *k == CellKind::Features);
    let _ = writeln!(
        s,
        "grid `{}` ({}): {} cells ({} train, {} evaluate, {} test-feature)",
        grid.name,
        grid.source.display(),
        grid.cells.len(),
        grid.cells.len() - evals - features,
        evals,
        features
    );
    let _ = writeln!(s, "output: {}", grid.output_dir.display());
    let _ =
        writeln!(
        s,
        "{:>5}  {:<25}  {:<21}  {:<8}  {:<4}  {:<15}  {:<12}  {:>5}  {:>4}  {:>6}  {:>12}  after",
        "#", "id", "protocol", "kind", "done", "dataset", "method", "shots", "seed", "epochs",
        "cost",
    );
    // What tells cells apart beyond dataset, method, shots and seed (the report's labels).
    let work: Vec<usize> = (0..grid.cells.len())
        .filter(|&i| grid.cells[i].kind != CellKind::Features)
        .collect();
    let described: Vec<_> = work.iter().map(|&i| (&grid.cells[i].spec, None)).collect();
    let mut variant = vec![String::new(); grid.cells.len()];
    for (&i, v) in work.iter().zip(crate::report::label::variants(&described)) {
        variant[i] = v;
    }
    for (n, c) in grid.cells.iter().enumerate() {
        let kind = match c.kind {
            CellKind::Train => "train",
            CellKind::Evaluate { .. } => "evaluate",
            CellKind::Features => "features",
        };
        let after = if c.deps.is_empty() {
            "-".to_string()
        } else {
            c.deps.join(",")
        };
        let _ = writeln!(
            s,
            "{:>5}  {:<25}  {:<21}  {:<8}  {:<4}  {:<15}  {:<12}  {:>5}  {:>4}  {:>6}  {:>12.0}  {}{}",
            n + 1,
            c.id,
            c.protocol.to_string(),
            kind,
            if done[n] { "yes" } else { "" },
            c.spec.dataset,
            or_dash(c, c.spec.method.to_string()),
            or_dash(c, c.spec.shots.to_string()),
            or_dash(c, c.spec.seed.to_string()),
            or_dash(c, c.spec.epochs.to_string()),
            c.cost,
            after,
            details(c, &variant[n]),
        );
    }
    let _ = writeln!(
        s,
        "total cost estimate: {:.0} (text-encoder prompt passes)",
        grid.total_cost()
    );
    let left = done.iter().filter(|d| !**d).count();
    if left < grid.cells.len() {
        let _ = writeln!(
            s,
            "already done: {} of {} cells (a run skips them; the estimates below are for the {left} \
             left)",
            grid.cells.len() - left,
            grid.cells.len()
        );
    }
    if let Some(t) = time_estimate(grid, &done) {
        let _ = writeln!(s, "{t}");
    }
    let need = crate::grid::cost::disk_estimate(grid, &done);
    let free = crate::grid::cost::free_bytes(&grid.output_dir);
    let _ = writeln!(
        s,
        "disk: about {} MB written under the output directory ({} free there)",
        need.div_ceil(1 << 20),
        free.map_or("unknown".into(), |b| format!("{} MB", b >> 20))
    );
    if free.is_some_and(|f| f < need) {
        let _ = writeln!(
            s,
            "warning: the output directory's file system has less free space than the grid \
             writes; cells would fail when they save"
        );
    }
    for w in missing_inputs(grid) {
        let _ = writeln!(s, "warning: {w}");
    }
    s
}

/// "about H hours on 1 rank, H/N on N ranks", from rates measured on earlier results in the
/// output directory, else from a probe of the grid's first weights file. The ranks are the
/// launch's, else this machine's cores; the division assumes the ranks stay busy (long
/// dependency chains make it optimistic). Cells marked in `done` are left out.
pub fn time_estimate(grid: &Grid, done: &[bool]) -> Option<String> {
    let rates = rates(grid)?;
    let secs: f64 = grid
        .cells
        .iter()
        .zip(done)
        .filter(|(_, d)| !**d)
        .map(|(c, _)| match c.kind {
            CellKind::Features => c.cost * rates.features,
            _ => c.cost * rates.train,
        })
        .sum();
    let ranks = match crate::ranks::launched_world_size() {
        1 => subpt_trainer::threads::usable_cores(),
        n => n,
    };
    Some(format!(
        "time estimate: about {} on 1 rank, {} on {ranks} ranks ({})",
        hours(secs),
        hours(secs / ranks as f64),
        rates.source
    ))
}

/// Seconds per cost unit: measured on earlier results in the output directory, else on a
/// probe of the grid's first weights file that exists.
fn rates(grid: &Grid) -> Option<crate::grid::cost::Rates> {
    use crate::grid::cost::{rates_from_probe, rates_from_results};
    rates_from_results(&grid.output_dir).or_else(|| {
        let w = grid
            .cells
            .iter()
            .map(|c| &c.spec.weights)
            .find(|w| w.is_file())?;
        rates_from_probe(w)
    })
}

fn hours(secs: f64) -> String {
    match secs {
        s if s < 60.0 => format!("{s:.0} s"),
        s if s < 3600.0 => format!("{:.1} min", s / 60.0),
        s => format!("{:.1} h", s / 3600.0),
    }
}

/// Weights files and dataset folders the cells need that are not there (yet): a dry run is
/// where a typo in a path should show, not hours into a run.
pub fn missing_inputs(grid: &Grid) -> Vec<String> {
    let mut out = std::collections::BTreeSet::new();
    for c in &grid.cells {
        let spec = &c.spec;
        if !spec.weights.exists() {
            out.insert(format!("weights {} do not exist", spec.weights.display()));
        }
        let dir = spec.dataset.info().dataset_dir(&spec.root);
        if !dir.is_dir() {
            out.insert(format!(
                "dataset {} is not under {} (no {})",
                spec.dataset,
                spec.root.display(),
                dir.display()
            ));
        }
    }
    out.into_iter().collect()
}

/// Feature cells have no method, shots, seed or epochs of their own.
fn or_dash(c: &crate::grid::Cell, v: String) -> String {
    match c.kind {
        CellKind::Features => "-".into(),
        _ => v,
    }
}

/// The settings that tell ablation cells apart, and `variant`: the fields that differ
/// between cells that would share a table row otherwise.
fn details(c: &crate::grid::Cell, variant: &str) -> String {
    if c.kind == CellKind::Features {
        return format!(
            "  [test subsets: {}]",
            SubsampleClasses::list(&c.spec.eval_subsets)
        );
    }
    let mut parts = Vec::new();
    if c.spec.subsample != SubsampleClasses::All {
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
    if let Some(k) = &c.spec.kg {
        parts.push(format!("kg_w={}", k.weight));
    }
    if let Some(p) = &c.spec.prograd {
        parts.push(format!("prograd_λ={} T={}", p.lambda, p.temperature));
    }
    if !variant.is_empty() {
        parts.push(variant.to_string());
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("  [{}]", parts.join(" "))
    }
}

/// Every shard of `count`: its cells and cost, and its time on one rank where rates are
/// known (from earlier results or a probe, as [`time_estimate`]). Feature cells count in each
/// shard that reads them; the one that claims them first encodes them.
pub fn shards(grid: &Grid, count: usize) -> String {
    let rates = rates(grid);
    let mut s =
        format!("\nshards of {count} (`--shard I/{count}`; a cell stays with its dependencies):\n");
    for index in 0..count {
        let part = crate::grid::shard::select(grid, crate::grid::Shard { index, count });
        let cost: f64 = part.cells.iter().map(|c| c.cost).sum();
        let secs = rates.as_ref().map(|r| {
            part.cells
                .iter()
                .map(|c| match c.kind {
                    CellKind::Features => c.cost * r.features,
                    _ => c.cost * r.train,
                })
                .sum::<f64>()
        });
        let _ = writeln!(
            s,
            "  shard {index}/{count}: {} cells, cost {cost:.0}{}",
            part.cells.len(),
            secs.map(|t| format!(", about {} on 1 rank", hours(t)))
                .unwrap_or_default()
        );
    }
    s
}
