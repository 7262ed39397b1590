//! `subpt_pickle` against CPython's pickle (tests/oracle/pickle_roundtrip.py): we read
//! what CPython writes at every protocol, write it back, and CPython must load the same values;
//! a Dassl-style few-shot cache is read field by field and a Datum list we build must load in
//! Python as real Datum instances.
#[path = "../../tests/harness.rs"]
mod harness;

use std::path::Path;
use subpt_pickle::{self as pickle, Constructor, Object, Value};

const DATUM: (&str, &str) = ("dassl.data.datasets.base_dataset", "Datum");

fn record_of(d: &Value) -> serde_json::Value {
    let o = d.as_object().expect("a Datum object");
    assert_eq!(o.class_name(), Some(DATUM));
    assert_eq!(o.constructor, Constructor::NewObj);
    let state = o.state.as_ref().expect("Datum has a __dict__");
    let field = |k: &str| state.get(k).unwrap_or_else(|| panic!("Datum without {k}"));
    serde_json::json!({
        "impath": field("_impath").as_str().expect("impath is a str"),
        "label": field("_label").as_i64().expect("label is an int"),
        "domain": field("_domain").as_i64().expect("domain is an int"),
        "classname": field("_classname").as_str().expect("classname is a str"),
    })
}

fn datum_of(r: &serde_json::Value) -> Value {
    let s = |k: &str| Value::str(r[k].as_str().expect("string field"));
    let i = |k: &str| Value::Int(r[k].as_i64().expect("int field"));
    Value::Object(Box::new(Object::new_obj(
        Value::global(DATUM.0, DATUM.1),
        Some(Value::Dict(vec![
            (Value::str("_impath"), s("impath")),
            (Value::str("_label"), i("label")),
            (Value::str("_domain"), i("domain")),
            (Value::str("_classname"), s("classname")),
        ])),
    )))
}

#[test]
fn cpython_pickles_read_write_and_load_back() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    harness::run(
        "pickle_roundtrip.py",
        &["make".as_ref(), "--out".as_ref(), dir.as_os_str()],
    );

    for proto in 0..=5 {
        let value = pickle::read_file(&dir.join(format!("corpus_p{proto}.pkl")))
            .unwrap_or_else(|e| panic!("{e}"));
        // Spot checks independent of the writer: these survive every protocol unchanged.
        assert_eq!(value.get("none"), Some(&Value::None));
        let ints = value.get("ints").and_then(Value::as_seq).expect("ints");
        assert_eq!(ints[9], Value::Int(2_147_483_648));
        assert_eq!(ints[11], Value::Int(i64::MIN));
        assert!(
            matches!(ints[12], Value::BigInt(_)),
            "2**63 needs more than i64"
        );
        let strings = value
            .get("strings")
            .and_then(Value::as_seq)
            .expect("strings");
        assert_eq!(strings[2], Value::str("ünïcödé €"));
        assert_eq!(strings[4], Value::str("quote'\"back\\slash"));
        let list = value
            .get("long_list")
            .and_then(Value::as_seq)
            .expect("long_list");
        assert_eq!(list.len(), 2500);
        assert_eq!(list[2499], Value::Int(2499));
        let bytes = dir.join(format!("rt_p{proto}.pkl"));
        subpt_io::write_atomic(
            &bytes,
            &pickle::write(&value).unwrap_or_else(|e| panic!("{e}")),
        )
        .unwrap();
    }

    let cache = pickle::read_file(&dir.join("fewshot.pkl")).unwrap_or_else(|e| panic!("{e}"));
    let records: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("fewshot.json")).expect("json"))
            .expect("records");
    for split in ["train", "val"] {
        let items = cache
            .get(split)
            .and_then(Value::as_seq)
            .expect("split list");
        let got: Vec<serde_json::Value> = items.iter().map(record_of).collect();
        assert_eq!(serde_json::Value::Array(got), records[split], "{split}");
    }

    // Damaged input must give an error (or a value), never a panic or a hang.
    let raw = std::fs::read(dir.join("fewshot.pkl")).expect("fewshot.pkl");
    for cut in 0..raw.len() {
        assert!(
            pickle::read(&raw[..cut]).is_err(),
            "a pickle cut at {cut} must not load"
        );
    }
    for at in 0..raw.len() {
        for b in [0x00, 0xff, b'(', b'h', 0x8a, 0x8d] {
            let mut bad = raw.clone();
            bad[at] = b;
            let _ = pickle::read(&bad);
        }
    }

    let all: Vec<Value> = ["train", "val"]
        .iter()
        .flat_map(|s| records[*s].as_array().expect("array").iter().map(datum_of))
        .collect();
    subpt_io::write_atomic(
        &dir.join("datum_rust.pkl"),
        &pickle::write(&Value::List(all)).expect("write"),
    )
    .expect("write");
    harness::run(
        "pickle_roundtrip.py",
        &["check".as_ref(), "--dir".as_ref(), dir.as_os_str()],
    );
}

#[test]
fn file_errors_name_the_file() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let path = tmp.path().join("cut.pkl");
    let full = pickle::write(&Value::List(vec![Value::str("abc"); 3])).expect("write");
    std::fs::write(&path, &full[..full.len() - 4]).expect("write file");
    let msg = pickle::read_file(&path).expect_err("truncated").to_string();
    assert!(
        msg.contains("cut.pkl") && msg.contains("truncated"),
        "{msg}"
    );
    let msg = pickle::read_file(Path::new("/nonexistent/x.pkl"))
        .expect_err("missing")
        .to_string();
    assert!(msg.contains("/nonexistent/x.pkl"), "{msg}");
}
