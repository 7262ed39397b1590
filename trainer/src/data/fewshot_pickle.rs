//! Dassl's `split_fewshot/shot_{K}-seed_{S}.pkl` through the crate's pickle reader/writer.
//!
//! Dassl pickles `{"train": [Datum, ...], "val": [Datum, ...]}` (ImageNet: `train` only), each
//! `Datum` a plain `dassl.data.datasets.base_dataset.Datum` instance whose `__dict__` holds
//! `_impath`, `_label`, `_domain` and `_classname`. We write the same shape (protocol 2), which
//! Dassl's `pickle.load` turns back into `Datum` objects.

use super::fewshot_cache::{DatumPickleCodec, PickledDatum, PickledFewshot};
use crate::pickle::{self, Object, Value};

const DATUM_MODULE: &str = "dassl.data.datasets.base_dataset";
const DATUM_CLASS: &str = "Datum";

/// The `DatumPickleCodec` for Dassl's cache files.
#[derive(Debug, Clone, Copy, Default)]
pub struct DasslPickle;

fn datum_from(v: &Value, at: &str) -> Result<PickledDatum, String> {
    let obj = v
        .as_object()
        .ok_or_else(|| format!("{at}: expected a Datum object, found {}", v.kind()))?;
    // Accept the class under any module path: only the instance dict matters, and forks of
    // Dassl vendor the package under other names.
    if obj.class_name().map(|(_, n)| n) != Some(DATUM_CLASS) {
        return Err(format!("{at}: expected a Datum object, found {}", v.kind()));
    }
    let state = obj
        .state
        .as_ref()
        .ok_or_else(|| format!("{at}: Datum has no attribute dict"))?;
    let field = |name: &str| -> Result<&Value, String> {
        state
            .get(name)
            .ok_or_else(|| format!("{at}: Datum has no attribute {name}"))
    };
    let string = |name: &str| -> Result<String, String> {
        let f = field(name)?;
        f.as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("{at}: {name} is a {}, not a str", f.kind()))
    };
    let int = |name: &str| -> Result<i64, String> {
        let f = field(name)?;
        f.as_i64()
            .ok_or_else(|| format!("{at}: {name} is a {}, not an int", f.kind()))
    };
    Ok(PickledDatum {
        impath: string("_impath")?,
        label: int("_label")?,
        // Older Datum pickles may lack it; Dassl's default is 0.
        domain: if state.get("_domain").is_some() {
            int("_domain")?
        } else {
            0
        },
        classname: string("_classname")?,
    })
}

fn list_from(top: &Value, key: &str) -> Result<Option<Vec<PickledDatum>>, String> {
    let Some(list) = top.get(key) else {
        return Ok(None);
    };
    let items = list
        .as_seq()
        .ok_or_else(|| format!("{key:?} is a {}, not a list", list.kind()))?;
    items
        .iter()
        .enumerate()
        .map(|(i, v)| datum_from(v, &format!("{key}[{i}]")))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn datum_to(d: &PickledDatum) -> Value {
    let state = Value::Dict(vec![
        (Value::str("_impath"), Value::str(&d.impath)),
        (Value::str("_label"), Value::Int(d.label)),
        (Value::str("_domain"), Value::Int(d.domain)),
        (Value::str("_classname"), Value::str(&d.classname)),
    ]);
    Value::Object(Box::new(Object::new_obj(
        Value::global(DATUM_MODULE, DATUM_CLASS),
        Some(state),
    )))
}

impl DatumPickleCodec for DasslPickle {
    fn decode(&self, bytes: &[u8]) -> Result<PickledFewshot, String> {
        let top = pickle::read(bytes).map_err(|e| e.to_string())?;
        if top.as_dict_items().is_none() {
            return Err(format!("expected a dict at the top, found {}", top.kind()));
        }
        let train = list_from(&top, "train")?.ok_or("no \"train\" key")?;
        Ok(PickledFewshot {
            train,
            val: list_from(&top, "val")?,
        })
    }

    fn encode(&self, data: &PickledFewshot) -> Result<Vec<u8>, String> {
        let list = |v: &[PickledDatum]| Value::List(v.iter().map(datum_to).collect());
        let mut top = vec![(Value::str("train"), list(&data.train))];
        if let Some(val) = &data.val {
            top.push((Value::str("val"), list(val)));
        }
        pickle::write(&Value::Dict(top)).map_err(|e| e.to_string())
    }
}
