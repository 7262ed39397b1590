//! Base / new class halves (`DATASET.SUBSAMPLE_CLASSES`, spec §3.3), applied after few-shot
//! sampling.

use super::splits::{DatasetSplits, Item};
use std::collections::{BTreeSet, HashMap};

/// A class subset: what a cell trains on and what it evaluates. Ordered as tables list them.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum SubsampleClasses {
    All,
    Base,
    New,
}

impl std::str::FromStr for SubsampleClasses {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "all" => Ok(SubsampleClasses::All),
            "base" => Ok(SubsampleClasses::Base),
            "new" => Ok(SubsampleClasses::New),
            _ => Err(format!("unknown class subset {s:?} (all, base, new)")),
        }
    }
}

impl std::fmt::Display for SubsampleClasses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SubsampleClasses::All => "all",
            SubsampleClasses::Base => "base",
            SubsampleClasses::New => "new",
        })
    }
}

impl SubsampleClasses {
    /// `all, base, new`: a list of subsets for a person to read.
    pub fn list(subsets: &[SubsampleClasses]) -> String {
        let names: Vec<String> = subsets.iter().map(|s| s.to_string()).collect();
        names.join(", ")
    }
}

/// `(|base|, |new|)` for `n` classes: base takes `ceil(n / 2)`.
pub fn base_new_sizes(n: usize) -> (usize, usize) {
    let m = n.div_ceil(2);
    (m, n - m)
}

/// Original labels kept, ascending: those present in `train`, then the first `ceil(n/2)`
/// (base) or the rest (new).
pub fn selected_labels(train: &[Item], which: SubsampleClasses) -> Vec<usize> {
    let labels: Vec<usize> = train
        .iter()
        .map(|it| it.label)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let (m, _) = base_new_sizes(labels.len());
    match which {
        SubsampleClasses::All => labels,
        SubsampleClasses::Base => labels[..m].to_vec(),
        SubsampleClasses::New => labels[m..].to_vec(),
    }
}

/// Keeps the chosen classes in all three lists (order preserved) and relabels them
/// `0..|set|` in ascending original order. `All` returns the splits unchanged.
pub fn subsample_classes(splits: &DatasetSplits, which: SubsampleClasses) -> DatasetSplits {
    if which == SubsampleClasses::All {
        return splits.clone();
    }
    let selected = selected_labels(&splits.train, which);
    let relabel: HashMap<usize, usize> = selected
        .iter()
        .enumerate()
        .map(|(new, &old)| (old, new))
        .collect();
    let filter = |items: &[Item]| -> Vec<Item> {
        items
            .iter()
            .filter_map(|it| {
                relabel.get(&it.label).map(|&label| Item {
                    label,
                    ..it.clone()
                })
            })
            .collect()
    };
    DatasetSplits {
        train: filter(&splits.train),
        val: filter(&splits.val),
        test: filter(&splits.test),
        classnames: selected
            .iter()
            .map(|&old| splits.classnames[old].clone())
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::catalog::DatasetName;
    use std::path::Path;

    #[test]
    fn base_new_sizes_of_the_11_datasets() {
        // Spec §3.3's table, checked against the class counts of our catalogue.
        let expected = [
            (DatasetName::ImageNet, 500, 500),
            (DatasetName::Caltech101, 50, 50),
            (DatasetName::OxfordPets, 19, 18),
            (DatasetName::StanfordCars, 98, 98),
            (DatasetName::OxfordFlowers, 51, 51),
            (DatasetName::Food101, 51, 50),
            (DatasetName::FgvcAircraft, 50, 50),
            (DatasetName::Sun397, 199, 198),
            (DatasetName::Dtd, 24, 23),
            (DatasetName::EuroSat, 5, 5),
            (DatasetName::Ucf101, 51, 50),
        ];
        assert_eq!(expected.len(), DatasetName::COOP_11.len());
        for (name, base, new) in expected {
            let n = name.info().num_classes;
            assert_eq!(base_new_sizes(n), (base, new), "{name}");
            // And on actual lists with that many classes, listed in reverse label order.
            let train: Vec<Item> = (0..n)
                .rev()
                .map(|l| Item::new(Path::new("/d"), &format!("{l}.jpg"), l, &format!("c{l}")))
                .collect();
            let splits = DatasetSplits {
                classnames: (0..n).map(|l| format!("c{l}")).collect(),
                test: train.clone(),
                val: Vec::new(),
                train,
            };
            let b = subsample_classes(&splits, SubsampleClasses::Base);
            let nw = subsample_classes(&splits, SubsampleClasses::New);
            assert_eq!((b.num_classes(), nw.num_classes()), (base, new), "{name}");
            assert_eq!((b.test.len(), nw.test.len()), (base, new), "{name}");
            assert_eq!(nw.classnames[0], format!("c{base}"));
        }
    }

    #[test]
    fn relabels_in_ascending_order_and_filters_every_split() {
        let it = |l: usize, f: &str| Item::new(Path::new("/d"), f, l, &format!("c{l}"));
        // Labels 0..5 exist, but 3 is absent from train (e.g. after a few-shot draw): the
        // halves are computed over {0, 1, 2, 4} -> base {0, 1}, new {2, 4}.
        let splits = DatasetSplits {
            train: vec![it(4, "a"), it(0, "b"), it(2, "c"), it(1, "d"), it(4, "e")],
            val: vec![it(3, "f"), it(2, "g")],
            test: vec![it(1, "h"), it(4, "i"), it(3, "j"), it(2, "k"), it(0, "l")],
            classnames: (0..5).map(|l| format!("c{l}")).collect(),
        };
        let new = subsample_classes(&splits, SubsampleClasses::New);
        let view = |v: &[Item]| -> Vec<(String, usize)> {
            v.iter().map(|i| (i.relpath.clone(), i.label)).collect()
        };
        let s = |x: &str, l: usize| (x.to_string(), l);
        assert_eq!(view(&new.train), [s("a", 1), s("c", 0), s("e", 1)]);
        assert_eq!(view(&new.val), [s("g", 0)]);
        assert_eq!(view(&new.test), [s("i", 1), s("k", 0)]);
        assert_eq!(new.classnames, ["c2", "c4"]);
        let base = subsample_classes(&splits, SubsampleClasses::Base);
        assert_eq!(view(&base.test), [s("h", 1), s("l", 0)]);
        assert_eq!(base.train[0].classname, "c0");
        assert_eq!(subsample_classes(&splits, SubsampleClasses::All), splits);
    }
}
