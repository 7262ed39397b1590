//! Protocol-2 pickle writer for [`Value`] trees.
use super::value::{Constructor, Object, Value};
use super::PickleError;
use std::collections::HashMap;

/// Python pickles containers in batches of this many items; matching it keeps the stack small.
const BATCH: usize = 1000;
const MAX_DEPTH: usize = 1000;

#[derive(PartialEq, Eq, Hash)]
enum MemoKey {
    Str(String),
    Global(String, String),
}

struct Writer {
    out: Vec<u8>,
    /// Strings and globals repeat a lot (every `Datum` names its class and attributes), so each
    /// is written once and fetched from the memo afterwards.
    memo: HashMap<MemoKey, u32>,
}

pub fn write(v: &Value) -> Result<Vec<u8>, PickleError> {
    let mut w = Writer {
        out: vec![0x80, 2],
        memo: HashMap::new(),
    };
    w.value(v, 0)?;
    w.out.push(b'.');
    Ok(w.out)
}

fn unwritable<T>(msg: impl Into<String>) -> Result<T, PickleError> {
    Err(PickleError::Unwritable(msg.into()))
}

impl Writer {
    fn memo_get(&mut self, key: &MemoKey) -> bool {
        match self.memo.get(key) {
            Some(&i) => {
                if let Ok(b) = u8::try_from(i) {
                    self.out.extend([b'h', b]);
                } else {
                    self.out.push(b'j');
                    self.out.extend(i.to_le_bytes());
                }
                true
            }
            None => false,
        }
    }

    fn memo_put(&mut self, key: MemoKey) {
        let i = self.memo.len() as u32;
        if let Ok(b) = u8::try_from(i) {
            self.out.extend([b'q', b]);
        } else {
            self.out.push(b'r');
            self.out.extend(i.to_le_bytes());
        }
        self.memo.insert(key, i);
    }

    fn string(&mut self, s: &str) -> Result<(), PickleError> {
        let key = MemoKey::Str(s.to_string());
        if self.memo_get(&key) {
            return Ok(());
        }
        let n = u32::try_from(s.len()).or_else(|_| unwritable("string longer than 4 GiB"))?;
        self.out.push(b'X');
        self.out.extend(n.to_le_bytes());
        self.out.extend(s.as_bytes());
        self.memo_put(key);
        Ok(())
    }

    fn global(&mut self, module: &str, name: &str) -> Result<(), PickleError> {
        if module.contains('\n') || name.contains('\n') {
            return unwritable(format!(
                "global name {module:?}.{name:?} contains a newline"
            ));
        }
        let key = MemoKey::Global(module.to_string(), name.to_string());
        if self.memo_get(&key) {
            return Ok(());
        }
        self.out.push(b'c');
        for part in [module, name] {
            self.out.extend(part.as_bytes());
            self.out.push(b'\n');
        }
        self.memo_put(key);
        Ok(())
    }

    fn int(&mut self, i: i64) {
        if let Ok(b) = u8::try_from(i) {
            self.out.extend([b'K', b]);
        } else if let Ok(h) = u16::try_from(i) {
            self.out.push(b'M');
            self.out.extend(h.to_le_bytes());
        } else if let Ok(w) = i32::try_from(i) {
            self.out.push(b'J');
            self.out.extend(w.to_le_bytes());
        } else {
            let mut b = i.to_le_bytes().to_vec();
            let fill = if i < 0 { 0xff } else { 0 };
            while b.len() > 1 && b[b.len() - 1] == fill && (b[b.len() - 2] & 0x80) == (fill & 0x80)
            {
                b.pop();
            }
            self.long(&b);
        }
    }

    fn long(&mut self, b: &[u8]) {
        if let Ok(n) = u8::try_from(b.len()) {
            self.out.extend([0x8a, n]);
        } else {
            self.out.push(0x8b);
            self.out.extend((b.len() as u32).to_le_bytes());
        }
        self.out.extend(b);
    }

    /// `class(*args)`: `REDUCE` over a tuple of already-written values.
    fn call(
        &mut self,
        module: &str,
        name: &str,
        args: &[Value],
        depth: usize,
    ) -> Result<(), PickleError> {
        self.global(module, name)?;
        self.tuple(args, depth)?;
        self.out.push(b'R');
        Ok(())
    }

    fn tuple(&mut self, items: &[Value], depth: usize) -> Result<(), PickleError> {
        match items.len() {
            0 => self.out.push(b')'),
            n @ 1..=3 => {
                for v in items {
                    self.value(v, depth)?;
                }
                self.out.push(0x84 + n as u8);
            }
            _ => {
                self.out.push(b'(');
                for v in items {
                    self.value(v, depth)?;
                }
                self.out.push(b't');
            }
        }
        Ok(())
    }

    fn appends(&mut self, items: &[Value], depth: usize) -> Result<(), PickleError> {
        for chunk in items.chunks(BATCH) {
            self.out.push(b'(');
            for v in chunk {
                self.value(v, depth)?;
            }
            self.out.push(b'e');
        }
        Ok(())
    }

    fn setitems(&mut self, items: &[(Value, Value)], depth: usize) -> Result<(), PickleError> {
        for chunk in items.chunks(BATCH) {
            self.out.push(b'(');
            for (k, v) in chunk {
                self.value(k, depth)?;
                self.value(v, depth)?;
            }
            self.out.push(b'u');
        }
        Ok(())
    }

    fn object(&mut self, o: &Object, depth: usize) -> Result<(), PickleError> {
        if !o.kwargs.is_empty() {
            // Protocol 2 has no NEWOBJ_EX; Python itself falls back to this helper.
            self.global("copyreg", "__newobj_ex__")?;
            self.value(&o.class, depth)?;
            self.tuple(&o.args, depth)?;
            self.value(&Value::Dict(o.kwargs.clone()), depth)?;
            self.out.extend([0x87, b'R']);
        } else {
            self.value(&o.class, depth)?;
            self.tuple(&o.args, depth)?;
            self.out.push(match o.constructor {
                Constructor::NewObj => 0x81,
                Constructor::Reduce => b'R',
            });
        }
        self.appends(&o.list_items, depth)?;
        self.setitems(&o.dict_items, depth)?;
        if let Some(state) = &o.state {
            self.value(state, depth)?;
            self.out.push(b'b');
        }
        Ok(())
    }

    fn value(&mut self, v: &Value, depth: usize) -> Result<(), PickleError> {
        if depth > MAX_DEPTH {
            return unwritable(format!("nesting deeper than {MAX_DEPTH}"));
        }
        let d = depth + 1;
        match v {
            Value::None => self.out.push(b'N'),
            Value::Bool(b) => self.out.push(if *b { 0x88 } else { 0x89 }),
            Value::Int(i) => self.int(*i),
            Value::BigInt(b) => {
                if b.is_empty() {
                    self.int(0);
                } else {
                    self.long(b);
                }
            }
            Value::Float(f) => {
                self.out.push(b'G');
                self.out.extend(f.to_be_bytes());
            }
            Value::String(s) => self.string(s)?,
            Value::Bytes(b) => {
                // Protocol 2 has no bytes opcode: Python 3 writes `_codecs.encode(latin1, 'latin1')`.
                let latin1: String = b.iter().map(|&c| char::from(c)).collect();
                self.call(
                    "_codecs",
                    "encode",
                    &[Value::String(latin1), Value::str("latin1")],
                    d,
                )?;
            }
            Value::List(items) => {
                self.out.push(b']');
                self.appends(items, d)?;
            }
            Value::Tuple(items) => self.tuple(items, d)?,
            Value::Dict(items) => {
                self.out.push(b'}');
                self.setitems(items, d)?;
            }
            Value::Set(items) => self.call("builtins", "set", &[Value::List(items.clone())], d)?,
            Value::FrozenSet(items) => {
                self.call("builtins", "frozenset", &[Value::List(items.clone())], d)?
            }
            Value::Global { module, name } => self.global(module, name)?,
            Value::Object(o) => self.object(o, d)?,
            Value::PersistentId(p) => {
                self.value(p, d)?;
                self.out.push(b'Q');
            }
        }
        Ok(())
    }
}
