//! The arena of values an unpickling run builds, and its conversion to an owned tree.
use super::value::{Constructor, Object, Value};

/// Nesting deeper than this is refused rather than risking the thread's stack.
const MAX_DEPTH: usize = 1000;

pub type Id = usize;

/// A value under construction; children are arena ids so containers can be filled in place.
pub enum Node {
    Leaf(Value),
    List(Vec<Id>),
    Tuple(Vec<Id>),
    Dict(Vec<(Id, Id)>),
    Set(Vec<Id>),
    FrozenSet(Vec<Id>),
    Object {
        class: Id,
        constructor: Constructor,
        args: Vec<Id>,
        kwargs: Vec<(Id, Id)>,
        state: Option<Id>,
        list_items: Vec<Id>,
        dict_items: Vec<(Id, Id)>,
    },
    PersistentId(Id),
}

/// Copies the arena's sub-tree at `root` into an owned [`Value`].
pub fn to_value(nodes: &[Node], root: Id) -> Result<Value, String> {
    let mut conv = Converter {
        nodes,
        open: vec![false; nodes.len()],
        // Shared sub-trees are copied; this bounds the blow-up a hostile pickle could cause.
        budget: nodes.len().saturating_mul(64).saturating_add(1 << 20),
    };
    conv.value(root, 0)
}

struct Converter<'n> {
    nodes: &'n [Node],
    open: Vec<bool>,
    budget: usize,
}

impl Converter<'_> {
    fn value(&mut self, id: Id, depth: usize) -> Result<Value, String> {
        if depth > MAX_DEPTH {
            return Err(format!("nesting deeper than {MAX_DEPTH}"));
        }
        if self.budget == 0 {
            return Err("too many shared references (value tree too large)".into());
        }
        self.budget -= 1;
        if self.open[id] {
            return Err("self-referencing structure cannot be represented as a tree".into());
        }
        self.open[id] = true;
        let d = depth + 1;
        let v = match &self.nodes[id] {
            Node::Leaf(v) => v.clone(),
            Node::List(items) => Value::List(self.seq(items, d)?),
            Node::Tuple(items) => Value::Tuple(self.seq(items, d)?),
            Node::Set(items) => Value::Set(self.seq(items, d)?),
            Node::FrozenSet(items) => Value::FrozenSet(self.seq(items, d)?),
            Node::Dict(items) => Value::Dict(self.pairs(items, d)?),
            Node::PersistentId(p) => Value::PersistentId(Box::new(self.value(*p, d)?)),
            Node::Object {
                class,
                constructor,
                args,
                kwargs,
                state,
                list_items,
                dict_items,
            } => Value::Object(Box::new(Object {
                class: self.value(*class, d)?,
                constructor: *constructor,
                args: self.seq(args, d)?,
                kwargs: self.pairs(kwargs, d)?,
                state: match state {
                    Some(s) => Some(self.value(*s, d)?),
                    None => None,
                },
                list_items: self.seq(list_items, d)?,
                dict_items: self.pairs(dict_items, d)?,
            })),
        };
        self.open[id] = false;
        Ok(v)
    }

    fn seq(&mut self, ids: &[Id], depth: usize) -> Result<Vec<Value>, String> {
        ids.iter().map(|&i| self.value(i, depth)).collect()
    }

    fn pairs(&mut self, ids: &[(Id, Id)], depth: usize) -> Result<Vec<(Value, Value)>, String> {
        ids.iter()
            .map(|&(k, v)| Ok((self.value(k, depth)?, self.value(v, depth)?)))
            .collect()
    }
}
