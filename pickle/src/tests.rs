//! Opcode-level cases; parity with CPython is checked by `tests/pickle.rs`.
use super::*;

fn malformed(data: &[u8]) -> String {
    match read(data) {
        Err(e @ PickleError::Malformed { .. }) => e.to_string(),
        other => panic!("expected a malformed-pickle error, got {other:?}"),
    }
}

#[test]
fn memoised_container_filled_later_is_seen_by_get() {
    // EMPTY_LIST, BINPUT 0, MARK, EMPTY_DICT, BINPUT 1, BINGET 1, APPENDS, ... : Python's pickler
    // memoises a dict before filling it, and later references must see the filled dict.
    let mut p = vec![0x80, 2, b']', b'q', 0, b'(', b'}', b'q', 1, b'h', 1, b'e'];
    p.extend([b'h', 1, b'X', 1, 0, 0, 0, b'k', b'K', 7, b's', b'0', b'.']);
    let d = Value::Dict(vec![(Value::str("k"), Value::Int(7))]);
    assert_eq!(read(&p).unwrap(), Value::List(vec![d.clone(), d]));
}

#[test]
fn self_reference_is_refused() {
    // A list that contains itself: EMPTY_LIST, BINPUT 0, BINGET 0, APPEND, STOP.
    let msg = malformed(&[0x80, 2, b']', b'q', 0, b'h', 0, b'a', b'.']);
    assert!(msg.contains("self-referencing"), "{msg}");
}

#[test]
fn errors_say_what_and_where() {
    assert!(malformed(&[0x80, 2, b'X', 10, 0, 0, 0, b'a']).contains("truncated"));
    assert!(malformed(&[0x80, 2, b'N']).contains("before STOP"));
    assert!(malformed(&[0x80, 2, b'a', b'.']).contains("underflow"));
    assert!(malformed(&[0x80, 2, b'h', 3, b'.']).contains("memo key 3"));
    let msg = malformed(&[0x80, 2, b'N', 0xff, b'.']);
    assert!(
        msg.contains("opcode 0xff") && msg.contains("byte 3"),
        "{msg}"
    );
    assert!(malformed(&[0x80, 9, b'N', b'.']).contains("protocol 9"));
    assert!(matches!(
        read(&[0x80, 2, b'N', b'.', b'N']),
        Err(PickleError::TrailingData { extra: 1 })
    ));
}

#[test]
fn deep_nesting_is_refused_not_overflowing() {
    let mut p = vec![0x80, 2];
    p.extend(std::iter::repeat_n(b']', 5000));
    p.extend(std::iter::repeat_n(b'a', 4999));
    p.push(b'.');
    assert!(malformed(&p).contains("nesting"));
}

#[test]
fn long_integers_keep_their_value() {
    let long1 = |b: &[u8]| {
        let mut p = vec![0x80, 2, 0x8a, b.len() as u8];
        p.extend(b);
        p.push(b'.');
        read(&p).unwrap()
    };
    assert_eq!(long1(&[]), Value::Int(0));
    assert_eq!(long1(&[0xff]), Value::Int(-1));
    assert_eq!(long1(&i64::MIN.to_le_bytes()), Value::Int(i64::MIN));
    assert_eq!(
        long1(&[0, 0, 0, 0, 0, 0, 0, 0x80, 0]),
        Value::BigInt(vec![0, 0, 0, 0, 0, 0, 0, 0x80, 0])
    );
    assert_eq!(long1(&[0xff; 9]), Value::Int(-1));
}

#[test]
fn writer_output_reads_back() {
    let v = Value::Tuple(vec![
        Value::Int(-5),
        Value::Int(70000),
        Value::Int(i64::MAX),
        Value::BigInt(vec![1, 0, 0, 0, 0, 0, 0, 0, 1]),
        Value::Float(-0.25),
        Value::Bool(true),
        Value::None,
        Value::List((0..2500).map(Value::Int).collect()),
        Value::Dict(vec![(Value::str("a"), Value::str("a"))]),
        Value::PersistentId(Box::new(Value::str("p"))),
    ]);
    assert_eq!(read(&write(&v).unwrap()).unwrap(), v);
}
