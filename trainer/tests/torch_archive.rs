//! `read_tensors` against checkpoints written by PyTorch itself (tests/oracle/make_torch_archives.py).
use crate::common;

use safetensors::{Dtype, SafeTensors};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use subpt_trainer::clip::torch_archive::{read_tensors, ArchiveError, DType};

/// The oracle runs once per test binary; every test reads its files. They live in the target
/// tree (replaced on each run) so that nothing is left behind in /tmp.
fn archives() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("torch_archive_oracle");
        let _ = std::fs::remove_dir_all(&dir);
        common::run(
            "make_torch_archives.py",
            &["--out".as_ref(), dir.as_os_str()],
        );
        dir
    })
}

fn safetensors_dtype(d: DType) -> Dtype {
    match d {
        DType::F64 => Dtype::F64,
        DType::F32 => Dtype::F32,
        DType::F16 => Dtype::F16,
        DType::BF16 => Dtype::BF16,
        DType::I64 => Dtype::I64,
        DType::I32 => Dtype::I32,
        DType::I16 => Dtype::I16,
        DType::I8 => Dtype::I8,
        DType::U8 => Dtype::U8,
        DType::Bool => Dtype::BOOL,
    }
}

/// Keys in order, dtypes, shapes and bytes must equal what PyTorch reports.
fn check_case(name: &str) {
    let dir = archives();
    let got = read_tensors(&dir.join(format!("{name}.pt"))).unwrap_or_else(|e| panic!("{e}"));
    let keys: Vec<String> = serde_json::from_slice(
        &std::fs::read(dir.join(format!("{name}.keys.json"))).expect("keys.json"),
    )
    .expect("keys are a JSON list");
    let got_keys: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(got_keys, keys, "{name}: keys");
    let raw = std::fs::read(dir.join(format!("{name}.expected.safetensors"))).expect("expected");
    let expected = SafeTensors::deserialize(&raw).expect("safetensors");
    for (key, t) in &got {
        let want = expected.tensor(key).expect("expected tensor");
        assert_eq!(
            safetensors_dtype(t.dtype),
            want.dtype(),
            "{name}: dtype of {key}"
        );
        assert_eq!(t.shape, want.shape(), "{name}: shape of {key}");
        assert!(t.data == want.data(), "{name}: bytes of {key} differ");
    }
}

#[test]
fn state_dict_with_views_shared_storage_and_all_dtypes() {
    check_case("state");
}

#[test]
fn legacy_stream_format() {
    check_case("legacy");
}

#[test]
fn nested_checkpoint_keys_joined_with_dots() {
    check_case("nested");
}

#[test]
fn whole_pickled_module_gives_its_state_dict() {
    check_case("module");
}

#[test]
fn scripted_module_gives_state_dict_with_buffers() {
    check_case("script");
}

#[test]
fn traced_module_gives_state_dict_with_buffers() {
    check_case("trace");
}

#[test]
fn traced_clip_resnet_archive() {
    check_case("clip_rn");
}

#[test]
fn traced_clip_vit_archive() {
    check_case("clip_vit");
}

#[test]
fn big_endian_archive_is_swapped() {
    check_case("big");
}

fn error_of(file: &str) -> String {
    let path = archives().join("corrupt").join(file);
    let err = read_tensors(&path).expect_err("a damaged file must not load");
    let msg = err.to_string();
    assert!(
        msg.contains(&path.display().to_string()),
        "message must name the file: {msg}"
    );
    msg
}

fn assert_mentions(file: &str, parts: &[&str]) {
    let msg = error_of(file);
    for p in parts {
        assert!(msg.contains(p), "{file}: {msg:?} should mention {p:?}");
    }
}

#[test]
fn damaged_archives_give_specific_errors() {
    assert_mentions("truncated_storage.pt", &["storage 0", "truncated", "'f32'"]);
    assert_mentions(
        "unknown_storage.pt",
        &["unknown storage type torch.ComplexFloatStorage", "'f16'"],
    );
    assert_mentions("bad_pickle.pt", &["data.pkl", "malformed pickle"]);
    assert_mentions("missing_storage.pt", &["storage 1", "data/1"]);
    assert_mentions("no_data_pkl.pt", &["without data.pkl"]);
    assert_mentions("truncated_zip.pt", &["zip archive"]);
    assert_mentions("truncated_legacy.pt", &["legacy", "truncated"]);
    assert_mentions("garbage.pt", &["not a PyTorch checkpoint"]);
    assert_mentions("plain_pickle.pt", &["not a torch.save checkpoint"]);
}

#[test]
fn missing_file_is_an_io_error_naming_it() {
    let path = archives().join("does-not-exist.pt");
    match read_tensors(&path) {
        Err(e @ ArchiveError::Io(_)) => assert!(e.to_string().contains("does-not-exist.pt")),
        other => panic!("expected an I/O error, got {other:?}"),
    }
}
