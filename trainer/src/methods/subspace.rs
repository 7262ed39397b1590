//! SubPT's subspace: PCA of the early context trajectory and the gradient projection
//! `g <- U^T (U g)` that keeps every update inside the span of the top-r directions.
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

#[derive(Debug, thiserror::Error)]
pub enum SubspaceError {
    #[error("PCA needs at least 2 trajectory points, got {0}")]
    TooFewPoints(usize),
    #[error("rank {rank} is outside 1..={max} (min(points, dimension) of the trajectory)")]
    RankOutOfRange { rank: usize, max: usize },
    #[error("trajectory point {index} has {found} values, expected {expected}")]
    Ragged {
        index: usize,
        found: i64,
        expected: i64,
    },
}

/// The top-r principal directions of a trajectory, as scikit-learn's `PCA(svd_solver="full")`
/// computes them (rows centred by their mean), with its sign convention.
pub struct Subspace {
    /// [r, P] orthonormal rows, float64 on the CPU.
    pub components: Tensor,
    pub explained_variance: Vec<f64>,
    pub explained_variance_ratio: Vec<f64>,
}

/// Serialisable summary kept in results (the spectrum is what the ablation plots show).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SubspaceSummary {
    pub rank: usize,
    pub points: usize,
    pub dimension: i64,
    pub explained_variance: Vec<f64>,
    pub explained_variance_ratio: Vec<f64>,
}

impl Subspace {
    /// PCA of `points` (each a context tensor, flattened row-major) keeping `rank` components.
    pub fn fit(points: &[Tensor], rank: usize) -> Result<Self, SubspaceError> {
        if points.len() < 2 {
            return Err(SubspaceError::TooFewPoints(points.len()));
        }
        let expected = points[0].numel() as i64;
        let rows = points
            .iter()
            .enumerate()
            .map(|(index, p)| {
                let found = p.numel() as i64;
                if found != expected {
                    return Err(SubspaceError::Ragged {
                        index,
                        found,
                        expected,
                    });
                }
                Ok(p.detach()
                    .to_device(Device::Cpu)
                    .to_kind(Kind::Double)
                    .reshape([1, -1]))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let max = points.len().min(expected as usize);
        if rank == 0 || rank > max {
            return Err(SubspaceError::RankOutOfRange { rank, max });
        }
        let w = Tensor::cat(&rows, 0);
        let x = &w - w.mean_dim(0, true, Kind::Double);
        // tch's linalg_svd always passes a driver, which CPU tensors reject; svd() is the same
        // LAPACK decomposition with V untransposed.
        let (_, s, v) = x.svd(true, true);
        let vt = v.tr();
        let n = points.len() as f64;
        let var: Vec<f64> = Vec::<f64>::try_from(s.square() / (n - 1.0)).expect("1-d");
        let total: f64 = var.iter().sum();
        let mut comps = vt.narrow(0, 0, rank as i64).copy();
        // scikit-learn's sign rule: the largest-magnitude entry of each component is positive.
        let idx = comps.abs().argmax(1, true);
        let signs = comps.gather(1, &idx, false).sign();
        let signs = signs.where_self(&signs.ne(0.0), &signs.ones_like());
        comps *= signs;
        let explained_variance = var[..rank].to_vec();
        let explained_variance_ratio = explained_variance
            .iter()
            .map(|v| if total > 0.0 { v / total } else { 0.0 })
            .collect();
        Ok(Subspace {
            components: comps,
            explained_variance,
            explained_variance_ratio,
        })
    }

    pub fn rank(&self) -> usize {
        self.components.size()[0] as usize
    }

    pub fn summary(&self, points: usize) -> SubspaceSummary {
        SubspaceSummary {
            rank: self.rank(),
            points,
            dimension: self.components.size()[1],
            explained_variance: self.explained_variance.clone(),
            explained_variance_ratio: self.explained_variance_ratio.clone(),
        }
    }

    /// The basis in the dtype/device the projection runs in (fp32 context gradients).
    pub fn projector(&self, device: Device) -> Projector {
        Projector {
            u: self.components.to_kind(Kind::Float).to_device(device),
        }
    }
}

/// Applies `g <- U^T (U g)` to whole prompt gradients.
pub struct Projector {
    u: Tensor,
}

impl Projector {
    pub fn from_components(components: &Tensor, device: Device) -> Self {
        Projector {
            u: components.to_kind(Kind::Float).to_device(device),
        }
    }

    pub fn project(&self, grad: &Tensor) -> Tensor {
        let shape = grad.size();
        let g = grad.to_kind(Kind::Float).reshape([-1, 1]);
        self.u
            .tr()
            .matmul(&self.u.matmul(&g))
            .reshape(shape.as_slice())
            .to_kind(grad.kind())
    }

    pub fn components(&self) -> &Tensor {
        &self.u
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projection_is_idempotent_and_inside_span() {
        let pts: Vec<Tensor> = (0..6)
            .map(|i| Tensor::randn([4, 8], tch::kind::FLOAT_CPU) * (i as f64 + 1.0))
            .collect();
        let s = Subspace::fit(&pts, 3).unwrap();
        let gram = s.components.matmul(&s.components.tr());
        let eye = Tensor::eye(3, (Kind::Double, Device::Cpu));
        assert!((gram - eye).abs().max().double_value(&[]) < 1e-10);
        let p = s.projector(Device::Cpu);
        let g = Tensor::randn([4, 8], tch::kind::FLOAT_CPU);
        let once = p.project(&g);
        let twice = p.project(&once);
        assert!((&once - &twice).abs().max().double_value(&[]) < 1e-5);
        // The residual is orthogonal to every component.
        let resid = (&g - &once).reshape([-1]).to_kind(Kind::Double);
        assert!(s.components.matmul(&resid).abs().max().double_value(&[]) < 1e-5);
    }

    #[test]
    fn bad_inputs_are_errors() {
        let p = vec![Tensor::zeros([3], tch::kind::FLOAT_CPU)];
        assert!(matches!(
            Subspace::fit(&p, 1),
            Err(SubspaceError::TooFewPoints(1))
        ));
        let p = vec![
            Tensor::zeros([3], tch::kind::FLOAT_CPU),
            Tensor::zeros([4], tch::kind::FLOAT_CPU),
        ];
        assert!(matches!(
            Subspace::fit(&p, 1),
            Err(SubspaceError::Ragged { index: 1, .. })
        ));
        let p: Vec<Tensor> = (0..2)
            .map(|_| Tensor::zeros([3], tch::kind::FLOAT_CPU))
            .collect();
        assert!(matches!(
            Subspace::fit(&p, 3),
            Err(SubspaceError::RankOutOfRange { rank: 3, max: 2 })
        ));
    }
}
