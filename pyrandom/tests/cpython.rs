//! `PyRandom` against CPython's `random.Random` (tests/oracle/random_oracle.py): every method, on
//! shared streams, for small, zero, negative, word-boundary and multi-word seeds.
#[path = "../../tests/harness.rs"]
mod harness;

use serde_json::{json, Value};
use subpt_pyrandom::PyRandom;

fn seeds() -> Vec<i128> {
    vec![
        0,
        1,
        2,
        3,
        42,
        -5,
        (1 << 32) - 1,
        1 << 32,
        1 << 40,
        -(1 << 40),
        (1 << 64) - 1,
        (1 << 100) + 12345,
        i128::MAX,
    ]
}

fn ops() -> Vec<Value> {
    let mut ops = vec![];
    for k in [1, 5, 31, 32, 33, 53, 64, 65, 100, 0] {
        ops.push(json!({"op": "getrandbits", "k": k}));
    }
    for _ in 0..3 {
        ops.push(json!({"op": "random"}));
    }
    ops.push(json!({"op": "uniform", "a": -2.5, "b": 7.25}));
    for n in [
        1u64,
        2,
        3,
        7,
        1 << 31,
        (1 << 32) + 1,
        (1 << 33) + 5,
        u64::MAX,
    ] {
        ops.push(json!({"op": "randbelow", "n": n.to_string()}));
    }
    // Pool branch (n <= setsize) and set-rejection branch around each setsize boundary:
    // k <= 5 -> 21; k in 6..=21 -> 21 + 64 = 85; k in 22..=85 -> 21 + 256.
    for (n, k) in [
        (10, 3),
        (21, 5),
        (22, 5),
        (22, 1),
        (5, 0),
        (85, 16),
        (86, 16),
        (86, 6),
        (277, 22),
        (278, 22),
        (1000, 50),
        (30, 30),
    ] {
        ops.push(json!({"op": "sample", "n": n, "k": k}));
    }
    for n in [0, 1, 2, 10, 100] {
        ops.push(json!({"op": "shuffle", "n": n}));
    }
    ops.push(json!({"op": "randint", "a": -3, "b": 3}));
    ops.push(json!({"op": "randint", "a": 0, "b": 1_000_000_007}));
    ops.push(json!({"op": "randrange", "start": 0, "stop": 100, "step": 7}));
    ops.push(json!({"op": "randrange", "start": 10, "stop": -7, "step": -3}));
    ops.push(json!({"op": "randrange", "start": -50, "stop": 50, "step": 1}));
    // Long enough to cross several twists of the 624-word state.
    for _ in 0..1500 {
        ops.push(json!({"op": "getrandbits", "k": 32}));
    }
    ops
}

fn seeded(seed: i128) -> PyRandom {
    let mag = seed.unsigned_abs();
    let words: Vec<u32> = (0..4).map(|i| (mag >> (32 * i)) as u32).collect();
    let mut r = PyRandom::new(0);
    r.seed_words(&words);
    r
}

fn hex_of_words(words: &[u32]) -> String {
    let mut s = String::new();
    for w in words.iter().rev() {
        s.push_str(&format!("{w:08x}"));
    }
    let t = s.trim_start_matches('0');
    if t.is_empty() {
        "0".into()
    } else {
        t.into()
    }
}

fn apply(r: &mut PyRandom, op: &Value) -> Value {
    let u = |k: &str| op[k].as_u64().unwrap() as usize;
    let i = |k: &str| op[k].as_i64().unwrap();
    let f = |k: &str| op[k].as_f64().unwrap();
    match op["op"].as_str().unwrap() {
        "getrandbits" => json!(hex_of_words(&r.getrandbits_words(u("k") as u32))),
        "random" => json!(r.random().to_bits()),
        "uniform" => json!(r.uniform(f("a"), f("b")).to_bits()),
        "randbelow" => {
            let n: u64 = op["n"].as_str().unwrap().parse().unwrap();
            json!(r.randbelow(n).to_string())
        }
        "sample" => json!(r.sample_indices(u("n"), u("k")).unwrap()),
        "shuffle" => {
            let mut xs: Vec<usize> = (0..u("n")).collect();
            r.shuffle(&mut xs);
            json!(xs)
        }
        "randint" => json!(r.randint(i("a"), i("b")).unwrap()),
        "randrange" => json!(r.randrange(i("start"), i("stop"), i("step")).unwrap()),
        other => panic!("unknown op {other}"),
    }
}

#[test]
fn streams_match_cpython() {
    let ops = ops();
    let cases: Vec<Value> = seeds()
        .iter()
        .map(|s| json!({"seed": s.to_string(), "ops": ops}))
        .collect();
    let expected = harness::run_json("random_oracle.py", &json!(cases));
    for (ci, seed) in seeds().into_iter().enumerate() {
        let mut r = seeded(seed);
        for (oi, op) in ops.iter().enumerate() {
            let got = apply(&mut r, op);
            assert_eq!(
                got, expected[ci][oi],
                "seed {seed}, op #{oi} {op}: ours {got}, CPython {}",
                expected[ci][oi]
            );
        }
    }
}

#[test]
fn u64_and_signed_seeding_match_word_seeding() {
    for seed in [0u64, 1, 42, 1 << 40, u64::MAX] {
        let mut a = PyRandom::new(seed);
        let mut b = seeded(i128::from(seed));
        assert_eq!(a.getrandbits(64), b.getrandbits(64), "seed {seed}");
    }
    let mut a = PyRandom::new(0);
    a.seed_signed(-(1 << 40));
    let mut b = seeded(1 << 40);
    assert_eq!(a.next_u32(), b.next_u32());
}
