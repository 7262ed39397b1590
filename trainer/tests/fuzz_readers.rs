//! Readers of files a user hands us never panic: arbitrary bytes, and valid files with bytes
//! changed, give a value or an error (property tests, a few hundred cases each).
use proptest::prelude::*;
use std::path::Path;
use subpt_trainer::data::readers::{parse_split_value, read_split_entries};
use subpt_trainer::pickle::{self, Value};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A valid pickle of the shape Dassl's few-shot caches have (lists of tuples of str/int).
fn sample_pickle() -> Vec<u8> {
    let item = |i: i64| {
        Value::Tuple(vec![
            Value::String(format!("images/class_{i}/{i}.jpg")),
            Value::Int(i),
            Value::String(format!("class {i}")),
        ])
    };
    let v = Value::Dict(vec![
        (
            Value::String("train".into()),
            Value::List((0..6).map(item).collect()),
        ),
        (
            Value::String("val".into()),
            Value::List((0..2).map(item).collect()),
        ),
    ]);
    pickle::write(&v).expect("writes")
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn pickle_reader_takes_any_bytes(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = pickle::read(&data);
    }

    #[test]
    fn pickle_reader_takes_damaged_pickles(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut data = sample_pickle();
        for (at, byte) in edits {
            let i = at.index(data.len());
            data[i] = byte;
        }
        let _ = pickle::read(&data);
        let _ = pickle::read(&data[..cut.index(data.len())]);
    }

    #[test]
    fn split_json_takes_any_text(text in "\\PC{0,300}") {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("split.json");
        std::fs::write(&p, &text).unwrap();
        let _ = read_split_entries(&p, &["train", "val", "test"]);
    }

    #[test]
    fn split_json_takes_any_entry_shapes(v in json_value()) {
        let _ = parse_split_value(Path::new("split.json"), "train", &v);
        let _ = parse_split_value(Path::new("split.json"), "train", &serde_json::json!([v]));
    }
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::json!(f)),
        "\\PC{0,12}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            proptest::collection::btree_map("[a-z]{0,5}", inner, 0..3)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}
