//! The grid-file parser never panics: arbitrary text, and the shipped grids with lines
//! dropped, duplicated or characters replaced, give a grid or an error naming the file.
use proptest::prelude::*;
use std::path::Path;
use subpt_bench::grid::GridConfig;

fn shipped() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    v.sort();
    v
}

fn check(text: &str) {
    let path = Path::new("/fuzz/grid.yaml");
    if let Err(e) = GridConfig::parse(text, path) {
        assert!(e.to_string().starts_with("/fuzz/grid.yaml"), "{e}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_text(text in "\\PC{0,400}") {
        check(&text);
    }

    #[test]
    fn damaged_shipped_grids(
        which in any::<prop::sample::Index>(),
        edits in proptest::collection::vec(
            (0u8..3, any::<prop::sample::Index>(), "[ -~\\n]{0,6}"), 1..6),
    ) {
        let grids = shipped();
        let mut lines: Vec<String> = grids[which.index(grids.len())].lines().map(String::from).collect();
        for (op, at, s) in edits {
            if lines.is_empty() {
                break;
            }
            let i = at.index(lines.len());
            match op {
                0 => { lines.remove(i); }
                1 => { let l = lines[i].clone(); lines.insert(i, l); }
                _ => {
                    let l = &mut lines[i];
                    let cut = l.char_indices().map(|(j, _)| j).nth(l.chars().count() / 2).unwrap_or(0);
                    l.replace_range(cut.., &s);
                }
            }
        }
        check(&lines.join("\n"));
    }
}
