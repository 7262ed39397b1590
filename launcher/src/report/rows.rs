//! What the rows of every table share: the notes on seeds and std, how seeds are gathered,
//! and what a row is ranked against for bold.
use super::collect::Loaded;
use super::label::MethodKey;
use super::table::Rank;
use std::collections::{BTreeMap, BTreeSet};

pub const STD_NOTE: &str =
    "std is the sample standard deviation over seeds (divides by n - 1); empty for one seed.";

/// How LaTeX accuracy cells read, for captions.
pub const PM_NOTE: &str =
    "Accuracy: mean ± sample std over seeds (std where a cell has at least two seeds).";

/// For a caption where some rows carry the labels of other settings (weights, a learning
/// rate): bold compares like with like.
pub fn labelled_note<'a>(keys: impl IntoIterator<Item = &'a MethodKey>) -> Option<String> {
    keys.into_iter().any(|m| !m.runs.is_empty()).then(|| {
        "Rows labelled with other settings (in brackets) rank only against rows with the same \
         labels."
            .into()
    })
}

/// What a row of a main table is ranked against for bold: the rows of its `block` (a dataset,
/// or a dataset and shot count) whose runs share their settings (`MethodKey::runs`), and on
/// `average` rows also their datasets, since averages over other datasets do not compare.
/// Ablation rows are ranked against nothing: they are not the methods the table compares.
pub fn rank(block: String, m: &MethodKey, datasets: Option<&BTreeSet<String>>) -> Rank {
    let against = (!m.is_ablation()).then(|| {
        let mut key = format!("{block}|{}", m.runs);
        if let Some(d) = datasets {
            key.push('|');
            key.push_str(&d.iter().cloned().collect::<Vec<_>>().join(","));
        }
        key
    });
    Rank { block, against }
}

/// Records one seed's value, keeping the first when a seed repeats (paths are sorted, so
/// the choice is stable) and saying so.
pub fn insert_seed<K: Ord, V>(
    cells: &mut BTreeMap<K, BTreeMap<u64, V>>,
    key: K,
    seed: u64,
    value: V,
    run: &Loaded,
    warnings: &mut Vec<String>,
) {
    match cells.entry(key).or_default().entry(seed) {
        std::collections::btree_map::Entry::Vacant(e) => {
            e.insert(value);
        }
        std::collections::btree_map::Entry::Occupied(_) => warnings.push(format!(
            "ignoring {}: another run of the same cell already has seed {seed}",
            run.path.display()
        )),
    }
}
