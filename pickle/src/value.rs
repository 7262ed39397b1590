//! The descriptive value tree a pickle decodes to.

/// One decoded pickle value.
///
/// Python objects that a real unpickler would construct by calling code (`GLOBAL` + `REDUCE`,
/// `NEWOBJ`, `BUILD`) are kept as an [`Object`] describing the call instead, so reading a pickle
/// never runs anything and the caller decides what each class means.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    /// An integer outside `i64`: little-endian two's-complement bytes, as `LONG1`/`LONG4` store it.
    BigInt(Vec<u8>),
    Float(f64),
    String(String),
    /// `bytes`, `bytearray`, and Python 2 `str` values that are not valid UTF-8.
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Tuple(Vec<Value>),
    /// A `dict`, pairs in insertion order.
    Dict(Vec<(Value, Value)>),
    Set(Vec<Value>),
    FrozenSet(Vec<Value>),
    /// A reference to a module-level name (a class or function), e.g. `collections.OrderedDict`.
    Global {
        module: String,
        name: String,
    },
    Object(Box<Object>),
    /// What the pickler's `persistent_id` returned; torch uses it for tensor storages.
    PersistentId(Box<Value>),
}

/// How an [`Object`] was constructed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Constructor {
    /// `class(*args)` (`REDUCE`, `INST`, `OBJ`): `class` is any callable.
    Reduce,
    /// `class.__new__(class, *args, **kwargs)` (`NEWOBJ`, `NEWOBJ_EX`): `__init__` is not run.
    NewObj,
}

/// An object the unpickler was asked to build, recorded rather than built.
///
/// The fields follow Python's reduce protocol: `class(*args)` or `class.__new__(...)`, then
/// `list_items` appended (`APPEND(S)`), `dict_items` set (`SETITEM(S)`, e.g. the entries of an
/// `OrderedDict`), then `state` applied (`BUILD`, usually the instance `__dict__`).
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    pub class: Value,
    pub constructor: Constructor,
    pub args: Vec<Value>,
    /// Keyword arguments of `NEWOBJ_EX`; empty otherwise.
    pub kwargs: Vec<(Value, Value)>,
    pub state: Option<Value>,
    pub list_items: Vec<Value>,
    pub dict_items: Vec<(Value, Value)>,
}

impl Object {
    /// An instance made the way Python pickles plain classes (`cls.__new__(cls)` + `BUILD`).
    pub fn new_obj(class: Value, state: Option<Value>) -> Object {
        Object {
            class,
            constructor: Constructor::NewObj,
            args: Vec::new(),
            kwargs: Vec::new(),
            state,
            list_items: Vec::new(),
            dict_items: Vec::new(),
        }
    }

    /// A `class(*args)` call.
    pub fn reduce(class: Value, args: Vec<Value>) -> Object {
        Object {
            class,
            constructor: Constructor::Reduce,
            args,
            kwargs: Vec::new(),
            state: None,
            list_items: Vec::new(),
            dict_items: Vec::new(),
        }
    }

    /// `(module, name)` when the class is a plain global reference.
    pub fn class_name(&self) -> Option<(&str, &str)> {
        self.class.as_global()
    }
}

impl Value {
    pub fn global(module: &str, name: &str) -> Value {
        Value::Global {
            module: module.to_string(),
            name: name.to_string(),
        }
    }

    pub fn str(s: &str) -> Value {
        Value::String(s.to_string())
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// Integers (and Python's `bool`, which is an `int`).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Bool(b) => Some(i64::from(*b)),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float(f) => Some(*f),
            Value::Int(i) => Some(*i as f64),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// `(module, name)` of a [`Value::Global`].
    pub fn as_global(&self) -> Option<(&str, &str)> {
        match self {
            Value::Global { module, name } => Some((module, name)),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&Object> {
        match self {
            Value::Object(o) => Some(o),
            _ => None,
        }
    }

    /// Elements of a list or tuple.
    pub fn as_seq(&self) -> Option<&[Value]> {
        match self {
            Value::List(v) | Value::Tuple(v) => Some(v),
            _ => None,
        }
    }

    /// Entries of a `dict`, or of an object built from `SETITEM(S)` such as an `OrderedDict`.
    pub fn as_dict_items(&self) -> Option<&[(Value, Value)]> {
        match self {
            Value::Dict(items) => Some(items),
            Value::Object(o)
                if o.class_name() == Some(("collections", "OrderedDict"))
                    || o.class_name() == Some(("builtins", "dict")) =>
            {
                Some(&o.dict_items)
            }
            _ => None,
        }
    }

    /// The value stored under a string key of a dict (see [`Value::as_dict_items`]).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_dict_items()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// A short description of the value's kind, for error messages.
    pub fn kind(&self) -> String {
        match self {
            Value::None => "None".into(),
            Value::Bool(_) => "bool".into(),
            Value::Int(_) | Value::BigInt(_) => "int".into(),
            Value::Float(_) => "float".into(),
            Value::String(_) => "str".into(),
            Value::Bytes(_) => "bytes".into(),
            Value::List(_) => "list".into(),
            Value::Tuple(_) => "tuple".into(),
            Value::Dict(_) => "dict".into(),
            Value::Set(_) => "set".into(),
            Value::FrozenSet(_) => "frozenset".into(),
            Value::Global { module, name } => format!("global {module}.{name}"),
            Value::Object(o) => match o.class_name() {
                Some((m, n)) => format!("{m}.{n} object"),
                None => "object".into(),
            },
            Value::PersistentId(_) => "persistent id".into(),
        }
    }
}
