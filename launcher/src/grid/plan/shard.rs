//! Parts of a grid for array jobs: `--shard I/N` runs part I of N (0-based, as SLURM numbers
//! an array's tasks from its first). A cell stays with what it depends on and what depends on
//! it (a SubPT run with the CoOp or NFL run whose trajectory it reads, a domain-generalisation
//! evaluation with its source model), so no shard waits on another; the parts are balanced by
//! the cost model, the costliest first onto the lightest shard. Feature cells go with every
//! shard that reads them: their features are shared through the cache, and the cell claims
//! (`run::claim`) let one process encode them while the others wait.
use crate::grid::{CellKind, Grid};
use std::collections::HashMap;

/// Part `index` of `count` (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not a shard: write I/N, 0 <= I < N (e.g. 0/4)");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// The shard of this task of a SLURM array job: its task id counted from the array's
    /// first, of the array's task count. `None` outside an array job.
    pub fn from_slurm(var: impl Fn(&str) -> Option<String>) -> Result<Option<Shard>, String> {
        let num = |k: &str| -> Result<Option<usize>, String> {
            var(k)
                .map(|v| {
                    v.trim()
                        .parse()
                        .map_err(|_| format!("${k} = `{v}` is not a number"))
                })
                .transpose()
        };
        let Some(id) = num("SLURM_ARRAY_TASK_ID")? else {
            return Ok(None);
        };
        let first = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
        let count = num("SLURM_ARRAY_TASK_COUNT")?
            .ok_or("SLURM_ARRAY_TASK_ID is set without SLURM_ARRAY_TASK_COUNT")?;
        let index = id
            .checked_sub(first)
            .filter(|&i| i < count)
            .ok_or_else(|| {
                format!("array task {id} is outside the array's {count} tasks from {first}")
            })?;
        Ok(Some(Shard { index, count }))
    }
}

/// The shard of every cell that is not a feature cell (`None` for feature cells).
pub fn assign(grid: &Grid, count: usize) -> Vec<Option<usize>> {
    let n = grid.cells.len();
    let is_features = |i: usize| grid.cells[i].kind == CellKind::Features;
    // Components of the dependency graph without feature cells (union-find).
    let mut parent: Vec<usize> = (0..n).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for (i, c) in grid.cells.iter().enumerate() {
        for &j in c.after.iter().filter(|&&j| !is_features(j)) {
            let (a, b) = (root(&mut parent, i), root(&mut parent, j));
            parent[a.max(b)] = a.min(b);
        }
    }
    let mut parts: Vec<(usize, f64)> = Vec::new();
    let mut part_of: HashMap<usize, usize> = HashMap::new();
    for i in (0..n).filter(|&i| !is_features(i)) {
        let r = root(&mut parent, i);
        let p = *part_of.entry(r).or_insert_with(|| {
            parts.push((r, 0.0));
            parts.len() - 1
        });
        parts[p].1 += grid.cells[i].cost;
    }
    // Longest first onto the least loaded shard; ties by grid order, so every task computes
    // the same assignment.
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by(|&a, &b| parts[b].1.total_cmp(&parts[a].1).then(a.cmp(&b)));
    let mut load = vec![0.0f64; count.max(1)];
    let mut shard_of_part = vec![0; parts.len()];
    for p in order {
        let s = (0..load.len())
            .min_by(|&a, &b| load[a].total_cmp(&load[b]).then(a.cmp(&b)))
            .expect("at least one shard");
        load[s] += parts[p].1;
        shard_of_part[p] = s;
    }
    (0..n)
        .map(|i| match is_features(i) {
            true => None,
            false => Some(shard_of_part[part_of[&root(&mut parent, i)]]),
        })
        .collect()
}

/// Which cells `shard` runs: its own, and the feature cells they read.
pub fn members(grid: &Grid, shard: Shard) -> Vec<bool> {
    let of = assign(grid, shard.count);
    let mut mine: Vec<bool> = of.iter().map(|s| *s == Some(shard.index)).collect();
    for (i, c) in grid.cells.iter().enumerate() {
        if mine[i] {
            for &j in &c.after {
                mine[j] = true;
            }
        }
    }
    mine
}

/// The grid of `shard`'s cells, in the same order, with dependencies re-indexed.
pub fn select(grid: &Grid, shard: Shard) -> Grid {
    let mine = members(grid, shard);
    let mut new_index = vec![usize::MAX; grid.cells.len()];
    let mut cells = Vec::new();
    for (i, c) in grid.cells.iter().enumerate().filter(|(i, _)| mine[*i]) {
        new_index[i] = cells.len();
        cells.push(c.clone());
    }
    for c in &mut cells {
        c.after = c.after.iter().map(|&j| new_index[j]).collect();
    }
    Grid {
        name: grid.name.clone(),
        source: grid.source.clone(),
        output_dir: grid.output_dir.clone(),
        cells,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::{config::GridConfig, expand};

    fn grid(text: &str) -> Grid {
        let cfg = GridConfig::parse(text, std::path::Path::new("/g/grid.yaml")).unwrap();
        expand(&cfg).unwrap()
    }

    const GRID: &str = "name: t\nprotocols: [few_shot, domain_generalization]\n\
        datasets: [eurosat, dtd]\nshots: [1, 4]\nseeds: [1, 2, 3]\n\
        methods: [zsclip, coop, coop_nfl, coop_sub, coop_sub_nfl]\nweights: w.pt\n\
        data_root: data\noutput_dir: out\ndg_source: eurosat\ndg_targets: [dtd]\n";

    #[test]
    fn every_cell_runs_in_one_shard_with_what_it_reads() {
        let g = grid(GRID);
        for count in [1, 2, 3, 7] {
            let of = assign(&g, count);
            let parts: Vec<Grid> = (0..count)
                .map(|index| select(&g, Shard { index, count }))
                .collect();
            for (i, c) in g.cells.iter().enumerate() {
                let holders = parts.iter().filter(|p| p.cell(&c.id).is_some()).count();
                match c.kind {
                    CellKind::Features => assert!(holders >= 1, "{}", c.id),
                    _ => assert_eq!(holders, 1, "{} in {holders} shards of {count}", c.id),
                }
                // A trained dependency (a SubPT source, a DG model) sits in the same shard.
                for &j in &c.after {
                    if g.cells[j].kind != CellKind::Features {
                        assert_eq!(of[i], of[j], "{} apart from {}", c.id, g.cells[j].id);
                    }
                }
            }
            // Each part is a grid of its own: its dependencies point inside it.
            for p in &parts {
                for c in &p.cells {
                    assert_eq!(c.after.len(), c.deps.len());
                    for (&j, d) in c.after.iter().zip(&c.deps) {
                        assert_eq!(&p.cells[j].id, d);
                    }
                }
            }
            // Balanced: no shard exceeds the lightest by more than the largest unit.
            let load = |p: &Grid| -> f64 {
                p.cells
                    .iter()
                    .filter(|c| c.kind != CellKind::Features)
                    .map(|c| c.cost)
                    .sum()
            };
            let loads: Vec<f64> = parts.iter().map(load).collect();
            let spread = loads.iter().cloned().fold(0.0, f64::max)
                - loads.iter().cloned().fold(f64::MAX, f64::min);
            // A unit is at most a source and the SubPT cells (and DG evaluations) reading it.
            let largest = g.cells.iter().map(|c| c.cost).fold(0.0, f64::max) * 3.0;
            assert!(spread <= largest, "{count} shards: loads {loads:?}");
        }
        // The same assignment every time (every array task computes it on its own).
        assert_eq!(assign(&g, 3), assign(&grid(GRID), 3));
    }

    #[test]
    fn shards_read_from_the_flag_and_from_slurm() {
        assert_eq!("2/4".parse::<Shard>(), Ok(Shard { index: 2, count: 4 }));
        for bad in ["4/4", "1", "a/b", "0/0"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(Shard::from_slurm(env(&[])), Ok(None));
        let arr = env(&[
            ("SLURM_ARRAY_TASK_ID", "7"),
            ("SLURM_ARRAY_TASK_MIN", "5"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]);
        assert_eq!(
            Shard::from_slurm(arr),
            Ok(Some(Shard { index: 2, count: 4 }))
        );
        let outside = env(&[
            ("SLURM_ARRAY_TASK_ID", "9"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]);
        assert!(Shard::from_slurm(outside).unwrap_err().contains("outside"));
    }
}
