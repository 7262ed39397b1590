//! CPython's `random.Random` (MT19937 plus the pure-Python helpers of `Lib/random.py`), so that
//! Dassl's few-shot draws can be reproduced bit for bit.
//!
//! The generator itself is the `mt19937` crate (RustPython's translation of the reference
//! `mt19937ar.c`, which CPython's `_randommodule.c` also builds on: `init_by_array` seeding and
//! `genrand_uint32`); this crate adds CPython's
//! int-to-key rule and the pure-Python methods on top, consuming 32-bit outputs exactly as
//! `Lib/random.py` does.
//!
//! Only the integer-seed path of `Random.seed` is provided: Dassl seeds with `cfg.SEED`, an int.
//! Every method consumes the generator exactly as CPython 3.x does (3.2 onwards for `sample`,
//! `shuffle` and `_randbelow`; `getrandbits(0)` returns 0 without drawing, as since 3.9).

use mt19937::MT19937;
use rand_core::Rng;
use thiserror::Error;

/// Argument errors mirroring the `ValueError`s CPython raises.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum RandomError {
    #[error("sample larger than population or is negative (k = {k}, population = {n})")]
    SampleTooLarge { k: usize, n: usize },
    #[error("empty range for randrange() ({start}, {stop}, {step})")]
    EmptyRange { start: i64, stop: i64, step: i64 },
    #[error("zero step for randrange()")]
    ZeroStep,
    #[error("range of randrange() too wide: {n} values")]
    RangeTooWide { n: i128 },
}

/// CPython-compatible `random.Random`.
pub struct PyRandom {
    mt: MT19937,
}

impl Clone for PyRandom {
    fn clone(&self) -> Self {
        let mut mt = MT19937::default();
        mt.set_state(self.mt.get_state());
        mt.set_index(self.mt.get_index());
        PyRandom { mt }
    }
}

impl std::fmt::Debug for PyRandom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PyRandom")
            .field("index", &self.mt.get_index())
            .finish_non_exhaustive()
    }
}

impl PyRandom {
    /// `random.Random(seed)` for a non-negative int seed.
    pub fn new(seed: u64) -> Self {
        let mut r = PyRandom {
            mt: MT19937::default(),
        };
        r.seed(seed);
        r
    }

    /// `random.seed(seed)` for a non-negative int.
    pub fn seed(&mut self, seed: u64) {
        self.seed_words(&[seed as u32, (seed >> 32) as u32]);
    }

    /// `random.seed(seed)` for a possibly negative int: CPython keys on `abs(seed)`.
    pub fn seed_signed(&mut self, seed: i64) {
        self.seed(seed.unsigned_abs());
    }

    /// `random.seed(n)` for an arbitrary-size non-negative int given as little-endian 32-bit
    /// words (least significant first). High zero words are ignored, as CPython keys on exactly
    /// `ceil(bit_length / 32)` words (one word, 0, for n = 0).
    pub fn seed_words(&mut self, words: &[u32]) {
        let used = words.iter().rposition(|&w| w != 0).map_or(1, |p| p + 1);
        let key: Vec<u32> = if words.is_empty() {
            vec![0]
        } else {
            words[..used].to_vec()
        };
        self.init_by_array(&key);
    }

    fn init_by_array(&mut self, key: &[u32]) {
        self.mt.seed_slice(key);
    }

    /// One tempered 32-bit output (`genrand_uint32`).
    pub fn next_u32(&mut self) -> u32 {
        self.mt.next_u32()
    }

    /// `random()`: a float in [0, 1) with 53 random bits, from two 32-bit outputs.
    pub fn random(&mut self) -> f64 {
        mt19937::gen_res53(&mut self.mt)
    }

    /// `getrandbits(k)` as little-endian 32-bit words (least significant first), for any k.
    /// The most significant word takes the top bits of its draw, as CPython does.
    pub fn getrandbits_words(&mut self, k: u32) -> Vec<u32> {
        if k == 0 {
            return Vec::new();
        }
        let words = (k - 1) / 32 + 1;
        let mut left = k;
        (0..words)
            .map(|_| {
                let r = self.next_u32();
                let w = if left < 32 { r >> (32 - left) } else { r };
                left = left.saturating_sub(32);
                w
            })
            .collect()
    }

    /// `getrandbits(k)` for k <= 64.
    pub fn getrandbits(&mut self, k: u32) -> u64 {
        assert!(k <= 64, "getrandbits: use getrandbits_words for k > 64");
        self.getrandbits_words(k)
            .iter()
            .enumerate()
            .fold(0u64, |acc, (i, &w)| acc | (u64::from(w) << (32 * i)))
    }

    /// `_randbelow(n)` (the getrandbits variant): rejection sampling over `n.bit_length()` bits.
    /// For n = 0 it returns 0 without drawing (CPython 3.10+ would never return).
    pub fn randbelow(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        let k = 64 - n.leading_zeros();
        loop {
            let r = self.getrandbits(k);
            if r < n {
                return r;
            }
        }
    }

    fn randbelow_usize(&mut self, n: usize) -> usize {
        self.randbelow(n as u64) as usize
    }

    /// The indices `random.sample(range(n), k)` returns, in selection order.
    ///
    /// Uses the pool method when `n <= setsize`, else set rejection, with CPython's
    /// `setsize = 21 + (4 ** ceil(log(3k, 4)) if k > 5)`.
    pub fn sample_indices(&mut self, n: usize, k: usize) -> Result<Vec<usize>, RandomError> {
        if k > n {
            return Err(RandomError::SampleTooLarge { k, n });
        }
        let mut setsize = 21usize;
        if k > 5 {
            // math.log(x, 4) is log(x) / log(4) in C doubles; 3k is never a power of 4, so
            // the ceil is not sensitive to the last ulp.
            let e = ((k as f64 * 3.0).ln() / 4f64.ln()).ceil() as u32;
            setsize = setsize.saturating_add(4usize.saturating_pow(e));
        }
        let mut out = Vec::with_capacity(k);
        if n <= setsize {
            let mut pool: Vec<usize> = (0..n).collect();
            for i in 0..k {
                let j = self.randbelow_usize(n - i);
                out.push(pool[j]);
                pool[j] = pool[n - i - 1];
            }
        } else {
            let mut selected = std::collections::HashSet::with_capacity(k);
            for _ in 0..k {
                let mut j = self.randbelow_usize(n);
                while selected.contains(&j) {
                    j = self.randbelow_usize(n);
                }
                selected.insert(j);
                out.push(j);
            }
        }
        Ok(out)
    }

    /// `random.sample(population, k)`.
    pub fn sample<T: Clone>(&mut self, population: &[T], k: usize) -> Result<Vec<T>, RandomError> {
        Ok(self
            .sample_indices(population.len(), k)?
            .into_iter()
            .map(|i| population[i].clone())
            .collect())
    }

    /// `random.shuffle(x)` (Fisher-Yates from the end).
    pub fn shuffle<T>(&mut self, x: &mut [T]) {
        for i in (1..x.len()).rev() {
            let j = self.randbelow_usize(i + 1);
            x.swap(i, j);
        }
    }

    /// `random.randrange(start, stop, step)`.
    pub fn randrange(&mut self, start: i64, stop: i64, step: i64) -> Result<i64, RandomError> {
        let width = i128::from(stop) - i128::from(start);
        let step128 = i128::from(step);
        let n = match step.cmp(&0) {
            std::cmp::Ordering::Equal => return Err(RandomError::ZeroStep),
            std::cmp::Ordering::Greater => floor_div(width + step128 - 1, step128),
            std::cmp::Ordering::Less => floor_div(width + step128 + 1, step128),
        };
        if n <= 0 {
            return Err(RandomError::EmptyRange { start, stop, step });
        }
        let n64 = u64::try_from(n).map_err(|_| RandomError::RangeTooWide { n })?;
        let r = i128::from(self.randbelow(n64));
        // start + step*r lies in [start, stop) (or (stop, start]) so it fits an i64.
        Ok((i128::from(start) + step128 * r) as i64)
    }

    /// `random.randint(a, b)`: uniform over [a, b], both ends included.
    pub fn randint(&mut self, a: i64, b: i64) -> Result<i64, RandomError> {
        let stop = b.checked_add(1).ok_or(RandomError::RangeTooWide {
            n: i128::from(b) - i128::from(a) + 1,
        })?;
        self.randrange(a, stop, 1)
    }

    /// `random.uniform(a, b)` = `a + (b - a) * random()`.
    pub fn uniform(&mut self, a: f64, b: f64) -> f64 {
        a + (b - a) * self.random()
    }
}

/// Python's `//` (rounds towards minus infinity).
fn floor_div(a: i128, b: i128) -> i128 {
    let q = a / b;
    if a % b != 0 && ((a < 0) != (b < 0)) {
        q - 1
    } else {
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The MT19937 reference (mt19937ar.c, init_by_array({0x123,0x234,0x345,0x456})) publishes
    // its first outputs; CPython's seeding is exactly that init_by_array over the seed's words.
    #[test]
    fn reference_vector_of_the_mt19937_authors() {
        let mut r = PyRandom::new(0);
        r.init_by_array(&[0x123, 0x234, 0x345, 0x456]);
        let first: Vec<u32> = (0..5).map(|_| r.next_u32()).collect();
        assert_eq!(
            first,
            [1067595299, 955945823, 477289528, 4107218783, 4228976476]
        );
    }

    #[test]
    fn high_zero_words_do_not_change_the_key() {
        let mut a = PyRandom::new(7);
        let mut b = PyRandom::new(0);
        b.seed_words(&[7, 0, 0]);
        assert_eq!(a.next_u32(), b.next_u32());
        let mut z = PyRandom::new(0);
        let mut e = PyRandom::new(1);
        e.seed_words(&[]);
        assert_eq!(z.next_u32(), e.next_u32());
    }

    #[test]
    fn argument_errors() {
        let mut r = PyRandom::new(1);
        assert_eq!(
            r.sample_indices(3, 4),
            Err(RandomError::SampleTooLarge { k: 4, n: 3 })
        );
        assert_eq!(r.randrange(0, 10, 0), Err(RandomError::ZeroStep));
        assert!(matches!(
            r.randrange(5, 5, 1),
            Err(RandomError::EmptyRange { .. })
        ));
        assert!(matches!(
            r.randrange(0, 10, -1),
            Err(RandomError::EmptyRange { .. })
        ));
    }

    #[test]
    fn randrange_stays_in_range_for_negative_steps() {
        let mut r = PyRandom::new(3);
        for _ in 0..200 {
            let v = r.randrange(10, -7, -3).unwrap();
            assert!((-7 + 1..=10).contains(&v) && (10 - v) % 3 == 0, "{v}");
        }
    }
}
