//! FGVCAircraft: `variants.txt` (label = line index) and `images_variant_{split}.txt` lines
//! `<imageid> <variant name>`, images at `images/<imageid>.jpg`.

use super::content_lines;
use crate::data::error::{DataError, Result};
use crate::data::splits::{DatasetSplits, Item};
use std::collections::HashMap;
use std::path::Path;

pub(super) fn read(dir: &Path, image_root: &Path) -> Result<DatasetSplits> {
    let variants_path = dir.join("variants.txt");
    let mut label_of: HashMap<String, usize> = HashMap::new();
    for (label, (line, name)) in content_lines(&variants_path)?.into_iter().enumerate() {
        if label_of.insert(name.clone(), label).is_some() {
            return Err(DataError::MalformedLine {
                path: variants_path,
                line,
                detail: format!("variant {name:?} listed twice"),
            });
        }
    }
    let read_split = |split: &str| -> Result<Vec<Item>> {
        let path = dir.join(format!("images_variant_{split}.txt"));
        content_lines(&path)?
            .into_iter()
            .map(|(_, text)| {
                // Dassl splits on single spaces and re-joins the tail, i.e. the class name is
                // everything after the first space.
                let (id, name) = text.split_once(' ').unwrap_or((text.as_str(), ""));
                let label = *label_of.get(name).ok_or_else(|| DataError::UnknownClass {
                    path: path.clone(),
                    name: name.to_string(),
                    list: variants_path.clone(),
                })?;
                Ok(Item::new(image_root, &format!("{id}.jpg"), label, name))
            })
            .collect()
    };
    let train = read_split("train")?;
    let val = read_split("val")?;
    let test = read_split("test")?;
    DatasetSplits::from_lists(train, val, test, &variants_path)
}
