//! SGD with `torch.optim.SGD` semantics (momentum, dampening 0, no Nesterov, L2 weight decay
//! added to the gradient). The gradient handed in may already be projected (SubPT): weight
//! decay is added *after* the projection, exactly where torch adds it in the reference code.
use serde::{Deserialize, Serialize};
use tch::Tensor;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SgdConfig {
    pub momentum: f64,
    pub weight_decay: f64,
}

impl Default for SgdConfig {
    fn default() -> Self {
        SgdConfig {
            momentum: 0.9,
            weight_decay: 5e-4,
        }
    }
}

/// Optimiser state for one parameter tensor.
pub struct Sgd {
    pub config: SgdConfig,
    buf: Option<Tensor>,
}

impl Sgd {
    pub fn new(config: SgdConfig) -> Self {
        Sgd { config, buf: None }
    }

    /// `theta -= lr * buf` with `buf = momentum * buf + (grad + wd * theta)` (the first step
    /// sets `buf` to the decayed gradient, as torch does).
    pub fn step(&mut self, theta: &mut Tensor, grad: &Tensor, lr: f64) {
        tch::no_grad(|| {
            let d = if self.config.weight_decay != 0.0 {
                grad + &*theta * self.config.weight_decay
            } else {
                grad.shallow_clone()
            };
            let d = if self.config.momentum != 0.0 {
                let b = match self.buf.take() {
                    None => d.detach().copy(),
                    Some(b) => b * self.config.momentum + d,
                };
                let out = b.shallow_clone();
                self.buf = Some(b);
                out
            } else {
                d
            };
            let _ = theta.f_sub_(&(d * lr)).expect("in-place update");
        });
    }

    /// The momentum buffer (for checkpoints and tests).
    pub fn momentum_buffer(&self) -> Option<&Tensor> {
        self.buf.as_ref()
    }
}
