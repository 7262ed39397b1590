//! The unpickling machine.
//!
//! Values live in an arena while the opcodes run, because pickles mutate containers after
//! memoising them (`EMPTY_DICT`, `BINPUT`, ..., `SETITEMS`) and a later `BINGET` must see the
//! filled container. The arena is turned into an owned [`Value`] tree once `STOP` is reached.
use super::arena::{to_value, Id, Node};
use super::text;
use super::value::{Constructor, Value};
use super::PickleError;
use std::collections::HashMap;

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    /// Offset of the opcode being run, for error messages.
    op_pos: usize,
    nodes: Vec<Node>,
    stack: Vec<Id>,
    marks: Vec<usize>,
    memo: HashMap<u64, Id>,
}

/// Decodes the pickle at the start of `data`; returns the value and the number of bytes it used.
pub fn read_prefix(data: &[u8]) -> Result<(Value, usize), PickleError> {
    let mut m = Machine {
        data,
        pos: 0,
        op_pos: 0,
        nodes: Vec::new(),
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
    };
    let root = m.run()?;
    let end = m.pos;
    let value = m.finish(root)?;
    Ok((value, end))
}

impl<'a> Machine<'a> {
    fn err<T>(&self, msg: impl Into<String>) -> Result<T, PickleError> {
        Err(PickleError::Malformed {
            offset: self.op_pos,
            msg: msg.into(),
        })
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], PickleError> {
        if self.data.len() - self.pos < n {
            return self.err(format!(
                "truncated: needs {n} more bytes, {} left",
                self.data.len() - self.pos
            ));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, PickleError> {
        Ok(self.take(1)?[0])
    }

    fn le<const N: usize>(&mut self) -> Result<[u8; N], PickleError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn len_u32(&mut self) -> Result<usize, PickleError> {
        Ok(u32::from_le_bytes(self.le()?) as usize)
    }

    fn len_u64(&mut self) -> Result<usize, PickleError> {
        let n = u64::from_le_bytes(self.le()?);
        // Anything beyond the input cannot be satisfied; `take` reports it as truncation.
        Ok(usize::try_from(n)
            .unwrap_or(usize::MAX)
            .min(self.data.len() + 1))
    }

    fn line(&mut self) -> Result<&'a [u8], PickleError> {
        let rest = &self.data[self.pos..];
        match rest.iter().position(|&b| b == b'\n') {
            Some(i) => {
                self.pos += i + 1;
                Ok(&rest[..i])
            }
            None => self.err("truncated: missing end of line"),
        }
    }

    fn utf8(&self, b: &[u8]) -> Result<String, PickleError> {
        match std::str::from_utf8(b) {
            Ok(s) => Ok(s.to_string()),
            Err(e) => self.err(format!("invalid UTF-8 in string: {e}")),
        }
    }

    fn add(&mut self, n: Node) -> Id {
        self.nodes.push(n);
        self.nodes.len() - 1
    }

    fn push(&mut self, n: Node) {
        let id = self.add(n);
        self.stack.push(id);
    }

    fn push_leaf(&mut self, v: Value) {
        self.push(Node::Leaf(v));
    }

    fn pop(&mut self) -> Result<Id, PickleError> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            return self.err("stack underflow");
        }
        Ok(self.stack.pop().expect("checked above"))
    }

    fn top(&self) -> Result<Id, PickleError> {
        match self.stack.last() {
            Some(&id) if self.stack.len() > self.marks.last().copied().unwrap_or(0) => Ok(id),
            _ => self.err("stack underflow"),
        }
    }

    fn pop_mark(&mut self) -> Result<Vec<Id>, PickleError> {
        match self.marks.pop() {
            Some(m) => Ok(self.stack.split_off(m)),
            None => self.err("no MARK on the stack"),
        }
    }

    fn string_of(&self, id: Id) -> Result<String, PickleError> {
        match &self.nodes[id] {
            Node::Leaf(Value::String(s)) => Ok(s.clone()),
            _ => self.err("STACK_GLOBAL needs two strings"),
        }
    }

    fn tuple_items(&self, id: Id, what: &str) -> Result<Vec<Id>, PickleError> {
        match &self.nodes[id] {
            Node::Tuple(items) => Ok(items.clone()),
            _ => self.err(format!("{what} arguments are not a tuple")),
        }
    }

    fn memo_get(&mut self, key: u64) -> Result<(), PickleError> {
        match self.memo.get(&key) {
            Some(&id) => {
                self.stack.push(id);
                Ok(())
            }
            None => self.err(format!("memo key {key} was never stored")),
        }
    }

    fn memo_put(&mut self, key: u64) -> Result<(), PickleError> {
        let id = self.top()?;
        self.memo.insert(key, id);
        Ok(())
    }

    fn int_leaf(&mut self, bytes: &[u8]) {
        self.push_leaf(int_from_le(bytes));
    }

    fn object(&mut self, class: Id, constructor: Constructor, args: Vec<Id>) {
        self.push(Node::Object {
            class,
            constructor,
            args,
            kwargs: Vec::new(),
            state: None,
            list_items: Vec::new(),
            dict_items: Vec::new(),
        });
    }

    fn global(&mut self, module: String, name: String) {
        let module = match module.as_str() {
            // Python 2 spellings, which protocol 0-2 pickles from Python 3 also use.
            "__builtin__" => "builtins".to_string(),
            "copy_reg" => "copyreg".to_string(),
            _ => module,
        };
        self.push_leaf(Value::Global { module, name });
    }

    fn append(&mut self, target: Id, items: Vec<Id>) -> Result<(), PickleError> {
        match &mut self.nodes[target] {
            Node::List(v) => v.extend(items),
            Node::Object { list_items, .. } => list_items.extend(items),
            _ => return self.err("APPEND to something that is not a list"),
        }
        Ok(())
    }

    fn set_items(&mut self, target: Id, items: Vec<Id>) -> Result<(), PickleError> {
        if items.len() % 2 == 1 {
            return self.err("SETITEMS with an odd number of items");
        }
        let pairs: Vec<(Id, Id)> = items.chunks(2).map(|p| (p[0], p[1])).collect();
        match &mut self.nodes[target] {
            // Pickled dicts never repeat a key, so no de-duplication is attempted here.
            Node::Dict(v) => v.extend(pairs),
            Node::Object { dict_items, .. } => dict_items.extend(pairs),
            _ => return self.err("SETITEM on something that is not a dict"),
        }
        Ok(())
    }

    /// Runs opcodes until `STOP`; returns the id of the result.
    fn run(&mut self) -> Result<Id, PickleError> {
        loop {
            self.op_pos = self.pos;
            let op = match self.u8() {
                Ok(op) => op,
                Err(_) => return self.err("truncated: input ended before STOP"),
            };
            match op {
                0x80 => {
                    let proto = self.u8()?;
                    if proto > 5 {
                        return self.err(format!("unsupported pickle protocol {proto}"));
                    }
                }
                0x95 => {
                    // FRAME only announces how many bytes follow; the opcodes are read in place.
                    let n = self.len_u64()?;
                    if n > self.data.len() - self.pos {
                        return self.err("truncated: frame longer than the input");
                    }
                }
                b'.' => return self.pop(),
                b'(' => self.marks.push(self.stack.len()),
                b'0' => {
                    if self.stack.len() > self.marks.last().copied().unwrap_or(0) {
                        self.stack.pop();
                    } else {
                        self.pop_mark()?;
                    }
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let id = self.top()?;
                    self.stack.push(id);
                }
                b'N' => self.push_leaf(Value::None),
                0x88 => self.push_leaf(Value::Bool(true)),
                0x89 => self.push_leaf(Value::Bool(false)),
                b'J' => {
                    let v = i32::from_le_bytes(self.le()?);
                    self.push_leaf(Value::Int(v.into()));
                }
                b'K' => {
                    let v = self.u8()?;
                    self.push_leaf(Value::Int(v.into()));
                }
                b'M' => {
                    let v = u16::from_le_bytes(self.le()?);
                    self.push_leaf(Value::Int(v.into()));
                }
                0x8a => {
                    let n = self.u8()? as usize;
                    let b = self.take(n)?;
                    self.int_leaf(b);
                }
                0x8b => {
                    let n = self.len_u32()?;
                    let b = self.take(n)?;
                    self.int_leaf(b);
                }
                b'G' => {
                    let v = f64::from_be_bytes(self.le()?);
                    self.push_leaf(Value::Float(v));
                }
                b'I' | b'L' | b'F' | b'S' | b'V' | b'P' => {
                    let line = self.line()?;
                    let v = match text::decode(op, line) {
                        Ok(v) => v,
                        Err(msg) => return self.err(msg),
                    };
                    if op == b'P' {
                        let id = self.add(Node::Leaf(v));
                        self.push(Node::PersistentId(id));
                    } else {
                        self.push_leaf(v);
                    }
                }
                b'X' => {
                    let n = self.len_u32()?;
                    let s = self.take(n)?;
                    let s = self.utf8(s)?;
                    self.push_leaf(Value::String(s));
                }
                0x8c => {
                    let n = self.u8()? as usize;
                    let s = self.take(n)?;
                    let s = self.utf8(s)?;
                    self.push_leaf(Value::String(s));
                }
                0x8d => {
                    let n = self.len_u64()?;
                    let s = self.take(n)?;
                    let s = self.utf8(s)?;
                    self.push_leaf(Value::String(s));
                }
                b'T' | b'U' => {
                    // Python 2 `str`: text when it decodes, bytes otherwise (torch loads with utf-8).
                    let n = if op == b'T' {
                        self.len_u32()?
                    } else {
                        self.u8()? as usize
                    };
                    let b = self.take(n)?;
                    self.push_leaf(text::py2_str(b));
                }
                b'B' | b'C' | 0x8e | 0x96 => {
                    let n = match op {
                        b'B' => self.len_u32()?,
                        b'C' => self.u8()? as usize,
                        _ => self.len_u64()?,
                    };
                    let b = self.take(n)?.to_vec();
                    self.push_leaf(Value::Bytes(b));
                }
                b']' => self.push(Node::List(Vec::new())),
                b')' => self.push(Node::Tuple(Vec::new())),
                b'}' => self.push(Node::Dict(Vec::new())),
                0x8f => self.push(Node::Set(Vec::new())),
                b'l' => {
                    let items = self.pop_mark()?;
                    self.push(Node::List(items));
                }
                b't' => {
                    let items = self.pop_mark()?;
                    self.push(Node::Tuple(items));
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    self.push(Node::Tuple(items));
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    let id = self.add(Node::Dict(Vec::new()));
                    self.set_items(id, items)?;
                    self.stack.push(id);
                }
                0x91 => {
                    let items = self.pop_mark()?;
                    self.push(Node::FrozenSet(items));
                }
                b'a' => {
                    let item = self.pop()?;
                    let target = self.top()?;
                    self.append(target, vec![item])?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    let target = self.top()?;
                    self.append(target, items)?;
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    let target = self.top()?;
                    self.set_items(target, vec![k, v])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    let target = self.top()?;
                    self.set_items(target, items)?;
                }
                0x90 => {
                    let items = self.pop_mark()?;
                    let target = self.top()?;
                    match &mut self.nodes[target] {
                        Node::Set(v) => v.extend(items),
                        _ => return self.err("ADDITEMS to something that is not a set"),
                    }
                }
                b'g' => {
                    let line = self.line()?;
                    let key = text::decimal_key(line).or_else(|m| self.err(m))?;
                    self.memo_get(key)?;
                }
                b'h' => {
                    let key = self.u8()?.into();
                    self.memo_get(key)?;
                }
                b'j' => {
                    let key = self.len_u32()? as u64;
                    self.memo_get(key)?;
                }
                b'p' => {
                    let line = self.line()?;
                    let key = text::decimal_key(line).or_else(|m| self.err(m))?;
                    self.memo_put(key)?;
                }
                b'q' => {
                    let key = self.u8()?.into();
                    self.memo_put(key)?;
                }
                b'r' => {
                    let key = self.len_u32()? as u64;
                    self.memo_put(key)?;
                }
                0x94 => {
                    let key = self.memo.len() as u64;
                    self.memo_put(key)?;
                }
                b'c' => {
                    let module = self.line()?;
                    let module = self.utf8(module)?;
                    let name = self.line()?;
                    let name = self.utf8(name)?;
                    self.global(module, name);
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (module, name) = (self.string_of(module)?, self.string_of(name)?);
                    self.global(module, name);
                }
                b'Q' => {
                    let pid = self.pop()?;
                    self.push(Node::PersistentId(pid));
                }
                b'R' => {
                    let args = self.pop()?;
                    let class = self.pop()?;
                    let args = self.tuple_items(args, "REDUCE")?;
                    self.object(class, Constructor::Reduce, args);
                }
                0x81 => {
                    let args = self.pop()?;
                    let class = self.pop()?;
                    let args = self.tuple_items(args, "NEWOBJ")?;
                    self.object(class, Constructor::NewObj, args);
                }
                0x92 => {
                    let kwargs = self.pop()?;
                    let args = self.pop()?;
                    let class = self.pop()?;
                    let args = self.tuple_items(args, "NEWOBJ_EX")?;
                    let kw = match &self.nodes[kwargs] {
                        Node::Dict(kw) => kw.clone(),
                        _ => return self.err("NEWOBJ_EX keyword arguments are not a dict"),
                    };
                    self.object(class, Constructor::NewObj, args);
                    if let Some(Node::Object { kwargs, .. }) = self.nodes.last_mut() {
                        *kwargs = kw;
                    }
                }
                b'i' => {
                    let module = self.line()?;
                    let module = self.utf8(module)?;
                    let name = self.line()?;
                    let name = self.utf8(name)?;
                    let args = self.pop_mark()?;
                    self.global(module, name);
                    let class = self.pop()?;
                    self.object(class, Constructor::Reduce, args);
                }
                b'o' => {
                    let mut args = self.pop_mark()?;
                    if args.is_empty() {
                        return self.err("OBJ without a class");
                    }
                    let class = args.remove(0);
                    self.object(class, Constructor::Reduce, args);
                }
                b'b' => {
                    let new_state = self.pop()?;
                    let target = self.top()?;
                    let merged = self.merge_state(target, new_state);
                    match &mut self.nodes[target] {
                        Node::Object { state, .. } => *state = Some(merged),
                        _ => return self.err("BUILD on something that is not an object"),
                    }
                }
                0x82..=0x84 => {
                    return self.err("extension registry codes (EXT*) are not supported")
                }
                0x97 | 0x98 => {
                    return self.err("out-of-band buffers (protocol 5) are not supported")
                }
                _ => return self.err(format!("unknown opcode 0x{op:02x}")),
            }
        }
    }

    /// A second `BUILD` of the same object updates its `__dict__` the way Python's does.
    fn merge_state(&mut self, target: Id, new_state: Id) -> Id {
        let old = match &self.nodes[target] {
            Node::Object {
                state: Some(old), ..
            } => *old,
            _ => return new_state,
        };
        match (&self.nodes[old], &self.nodes[new_state]) {
            (Node::Dict(a), Node::Dict(b)) => {
                let mut merged = a.clone();
                for &(k, v) in b {
                    upsert(&self.nodes, &mut merged, k, v);
                }
                self.add(Node::Dict(merged))
            }
            _ => new_state,
        }
    }

    fn finish(&self, root: Id) -> Result<Value, PickleError> {
        to_value(&self.nodes, root).map_err(|msg| PickleError::Malformed {
            offset: self.pos,
            msg,
        })
    }
}

/// Replaces the value of an equal leaf key (Python dict semantics), else appends.
fn upsert(nodes: &[Node], items: &mut Vec<(Id, Id)>, k: Id, v: Id) {
    if let Node::Leaf(key) = &nodes[k] {
        if let Some(slot) = items
            .iter_mut()
            .find(|(old, _)| matches!(&nodes[*old], Node::Leaf(o) if o == key))
        {
            slot.1 = v;
            return;
        }
    }
    items.push((k, v));
}

/// Integer from little-endian two's-complement bytes (`LONG1`, `LONG4`).
fn int_from_le(b: &[u8]) -> Value {
    if b.is_empty() {
        return Value::Int(0);
    }
    let negative = b[b.len() - 1] & 0x80 != 0;
    let fill = if negative { 0xff } else { 0 };
    if b.len() > 8 && b[8..].iter().any(|&x| x != fill) {
        return Value::BigInt(b.to_vec());
    }
    let mut a = [fill; 8];
    let n = b.len().min(8);
    a[..n].copy_from_slice(&b[..n]);
    let v = i64::from_le_bytes(a);
    if b.len() > 8 && (v < 0) != negative {
        return Value::BigInt(b.to_vec());
    }
    Value::Int(v)
}
