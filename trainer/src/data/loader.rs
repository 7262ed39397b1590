//! Batches of decoded, transformed images as `tch` tensors.
//!
//! Images of a batch are decoded and transformed in parallel (rayon) straight into one
//! contiguous `[B, 3, S, S]` float32 buffer. [`Prefetch`] runs that on a background thread one
//! batch ahead, so decoding overlaps with whatever consumes the previous batch.
//!
//! Order follows Dassl's loaders: evaluation is sequential (batch 100 by default); training
//! takes the index order of each epoch from the caller (who owns the shuffling RNG) and drops
//! the last partial batch only when asked. Each training item gets its own random source from a
//! caller-supplied factory keyed by its position in the epoch, so results do not depend on which
//! worker thread ran it.
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

use rayon::prelude::*;
use tch::Tensor;

use super::image::{load_rgb, ImageError};
use super::transforms::{TestTransform, TrainTransform, TransformError, TransformRng};

/// Dassl's evaluation batch size.
pub const TEST_BATCH_SIZE: usize = 100;

/// Anything that lists `(image path, label)` pairs.
pub trait ImageItems: Send + Sync {
    fn len(&self) -> usize;
    fn path(&self, index: usize) -> &Path;
    fn label(&self, index: usize) -> i64;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ImageItems for [(PathBuf, i64)] {
    fn len(&self) -> usize {
        <[(PathBuf, i64)]>::len(self)
    }
    fn path(&self, index: usize) -> &Path {
        &self[index].0
    }
    fn label(&self, index: usize) -> i64 {
        self[index].1
    }
}

impl ImageItems for Vec<(PathBuf, i64)> {
    fn len(&self) -> usize {
        self.as_slice().len()
    }
    fn path(&self, index: usize) -> &Path {
        &self[index].0
    }
    fn label(&self, index: usize) -> i64 {
        self[index].1
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("transform failed for {path}: {source}")]
    Transform {
        path: PathBuf,
        #[source]
        source: TransformError,
    },
    #[error("item index {index} is out of range for {len} items")]
    BadIndex { index: usize, len: usize },
    #[error("batch size must be positive")]
    ZeroBatch,
    #[error("building the batch tensor: {0}")]
    Tensor(#[from] tch::TchError),
}

/// One batch: images `[B, 3, S, S]` float32, labels `[B]` int64, and the item indices.
#[derive(Debug)]
pub struct Batch {
    pub images: Tensor,
    pub labels: Tensor,
    pub indices: Vec<usize>,
}

/// Sequential batches `0..n` of `batch_size` (the last may be short).
pub fn sequential_batches(n: usize, batch_size: usize) -> Result<Vec<Vec<usize>>, LoadError> {
    let order: Vec<usize> = (0..n).collect();
    ordered_batches(&order, batch_size, false)
}

/// Splits an epoch's index order into batches; `drop_last` drops a short final batch.
pub fn ordered_batches(
    order: &[usize],
    batch_size: usize,
    drop_last: bool,
) -> Result<Vec<Vec<usize>>, LoadError> {
    if batch_size == 0 {
        return Err(LoadError::ZeroBatch);
    }
    Ok(order
        .chunks(batch_size)
        .filter(|c| !drop_last || c.len() == batch_size)
        .map(<[usize]>::to_vec)
        .collect())
}

/// Dassl's rule for the training loader: drop a short last batch only when there is at least
/// one full batch, so a few-shot set smaller than the batch still gives one batch per epoch.
pub fn dassl_drop_last(n: usize, batch_size: usize) -> bool {
    n >= batch_size
}

/// How each item of a batch is turned into pixels.
#[derive(Clone)]
pub enum Pipeline<F> {
    Test(TestTransform),
    /// `rng_for(position)` builds the random source of the item at that position of the epoch.
    Train {
        transform: TrainTransform,
        rng_for: F,
    },
}

/// A [`Pipeline`] for evaluation (no random source).
pub type TestPipeline = Pipeline<fn(usize) -> super::transforms::SeededRng>;

impl TestPipeline {
    pub fn test(transform: TestTransform) -> Self {
        Pipeline::Test(transform)
    }
}

impl<F, R> Pipeline<F>
where
    F: Fn(usize) -> R + Send + Sync,
    R: TransformRng,
{
    fn size(&self) -> usize {
        match self {
            Pipeline::Test(t) => t.size(),
            Pipeline::Train { transform, .. } => transform.size(),
        }
    }

    fn run<S: ImageItems + ?Sized>(
        &self,
        items: &S,
        index: usize,
        position: usize,
        out: &mut [f32],
    ) -> Result<(), LoadError> {
        let path = items.path(index);
        let img = load_rgb(path)?;
        let res = match self {
            Pipeline::Test(t) => t.apply_into(&img, out),
            Pipeline::Train { transform, rng_for } => {
                let mut rng = rng_for(position);
                transform.apply_into(&img, &mut rng, out)
            }
        };
        res.map_err(|source| LoadError::Transform {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// Decodes and transforms `indices` in parallel into one batch. `first_position` is the epoch
/// position of `indices[0]` (it keys the per-item random sources).
pub fn load_batch<S, F, R>(
    items: &S,
    indices: &[usize],
    first_position: usize,
    pipeline: &Pipeline<F>,
) -> Result<Batch, LoadError>
where
    S: ImageItems + ?Sized,
    F: Fn(usize) -> R + Send + Sync,
    R: TransformRng,
{
    if let Some(&index) = indices.iter().find(|&&i| i >= items.len()) {
        return Err(LoadError::BadIndex {
            index,
            len: items.len(),
        });
    }
    let s = pipeline.size();
    let per = 3 * s * s;
    let mut data = vec![0.0f32; indices.len() * per];
    data.par_chunks_mut(per)
        .zip(indices.par_iter())
        .enumerate()
        .try_for_each(|(k, (out, &index))| pipeline.run(items, index, first_position + k, out))?;
    let b = indices.len() as i64;
    let s = s as i64;
    let images = Tensor::f_from_slice(&data)?.f_view([b, 3, s, s])?;
    let labels: Vec<i64> = indices.iter().map(|&i| items.label(i)).collect();
    Ok(Batch {
        images,
        labels: Tensor::f_from_slice(&labels)?,
        indices: indices.to_vec(),
    })
}

/// Iterator over the batches of one pass, each prepared on a background thread while the
/// previous one is in use. Dropping it stops the thread after the batch in progress.
pub struct Prefetch {
    rx: Option<Receiver<Result<Batch, LoadError>>>,
    worker: Option<JoinHandle<()>>,
    remaining: usize,
}

impl Prefetch {
    /// Starts loading `batches` (lists of item indices) of `items` with `pipeline`. Positions
    /// for the random sources count items across the whole pass.
    pub fn start<S, F, R>(items: Arc<S>, batches: Vec<Vec<usize>>, pipeline: Pipeline<F>) -> Self
    where
        S: ImageItems + ?Sized + 'static,
        F: Fn(usize) -> R + Send + Sync + 'static,
        R: TransformRng,
    {
        // One finished batch waits in the channel while the next is being built.
        let (tx, rx) = sync_channel(1);
        let remaining = batches.len();
        let worker = std::thread::spawn(move || {
            let mut position = 0;
            for indices in batches {
                let batch = load_batch(&*items, &indices, position, &pipeline);
                position += indices.len();
                let failed = batch.is_err();
                if tx.send(batch).is_err() || failed {
                    return;
                }
            }
        });
        Self {
            rx: Some(rx),
            worker: Some(worker),
            remaining,
        }
    }

    /// Evaluation order: sequential batches of `batch_size`.
    pub fn test<S>(
        items: Arc<S>,
        batch_size: usize,
        transform: TestTransform,
    ) -> Result<Self, LoadError>
    where
        S: ImageItems + ?Sized + 'static,
    {
        let batches = sequential_batches(items.len(), batch_size)?;
        Ok(Self::start(items, batches, TestPipeline::test(transform)))
    }

    /// Training order: the caller's `order` for this epoch, split into batches.
    pub fn train<S, F, R>(
        items: Arc<S>,
        order: &[usize],
        batch_size: usize,
        drop_last: bool,
        transform: TrainTransform,
        rng_for: F,
    ) -> Result<Self, LoadError>
    where
        S: ImageItems + ?Sized + 'static,
        F: Fn(usize) -> R + Send + Sync + 'static,
        R: TransformRng,
    {
        let batches = ordered_batches(order, batch_size, drop_last)?;
        Ok(Self::start(
            items,
            batches,
            Pipeline::Train { transform, rng_for },
        ))
    }

    /// Batches not yet returned.
    pub fn remaining(&self) -> usize {
        self.remaining
    }
}

impl Iterator for Prefetch {
    type Item = Result<Batch, LoadError>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.rx.as_ref()?.recv().ok();
        match &item {
            Some(Ok(_)) => self.remaining -= 1,
            // After an error the worker has stopped; nothing more will come.
            _ => {
                self.remaining = 0;
                self.rx = None;
            }
        }
        item
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        // Closing the channel makes the worker's next send fail, which ends it.
        self.rx = None;
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}
