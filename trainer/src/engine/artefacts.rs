//! The trained files a cell writes and others read: the context (`context.safetensors`) and the
//! trajectory (`trajectory.safetensors`), named by the cell store.
use super::error::RunError;
use crate::io::AtPath;
use crate::store::CellDir;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::{Device, Tensor};

/// The trajectory file holds `ctx_<e>` for e = 1..E (context after epoch e) and `theta0`; the
/// context file the final `ctx` and any other trained tensors (`extra`, by name). Returns the
/// SHA-256 of each file written, by file name, for the result to record.
pub(crate) fn save_context(
    store: &CellDir,
    theta0: &Tensor,
    trajectory: &[Tensor],
    extra: &[(String, Tensor)],
) -> Result<BTreeMap<String, String>, RunError> {
    let mut named = vec![("theta0".to_string(), theta0.to_device(Device::Cpu))];
    for (e, t) in trajectory.iter().enumerate() {
        named.push((format!("ctx_{}", e + 1), t.to_device(Device::Cpu)));
    }
    let last = trajectory.last().unwrap_or(theta0).to_device(Device::Cpu);
    let mut written = BTreeMap::new();
    let mut write = |p: PathBuf, tensors: &[(String, Tensor)]| -> Result<(), RunError> {
        crate::io::with_atomic_path(&p, |tmp| {
            Tensor::write_safetensors(tensors, tmp)
                .map_err(|e| std::io::Error::other(e.to_string()))
                .at(&p)
        })?;
        let name = p
            .file_name()
            .expect("a file")
            .to_string_lossy()
            .into_owned();
        written.insert(name, crate::digest::file_digest(&p).at(&p)?);
        Ok(())
    };
    write(store.trajectory(), &named)?;
    let mut context = vec![("ctx".to_string(), last)];
    context.extend(
        extra
            .iter()
            .map(|(k, t)| (k.clone(), t.detach().to_device(Device::Cpu))),
    );
    write(store.context(), &context)?;
    Ok(written)
}

/// Reads ctx_1..ctx_n of a stage-A trajectory file.
pub fn load_trajectory(path: &Path, n: usize) -> Result<Vec<Tensor>, RunError> {
    let map: BTreeMap<String, Tensor> = Tensor::read_safetensors(path)
        .map_err(|e| std::io::Error::other(e.to_string()))
        .at(path)?
        .into_iter()
        .collect();
    (1..=n)
        .map(|e| {
            map.get(&format!("ctx_{e}"))
                .map(|t| t.shallow_clone())
                .ok_or_else(|| {
                    RunError::Spec(format!(
                        "{}: no ctx_{e} (trajectory shorter than {n} epochs)",
                        path.display()
                    ))
                })
        })
        .collect()
}
