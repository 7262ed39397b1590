//! Dassl's per-epoch schedule as CoOp configures it: `warmup_epochs` at a constant `warmup_lr`,
//! then cosine annealing over the whole run whose step counter starts *after* the warm-up
//! (the cosine scheduler is stepped only once warm-up is over), so epoch `e >= warmup` uses
//! `base/2 * (1 + cos(pi * (e - warmup) / E))`: the first post-warm-up epoch gets the full base
//! rate and the last epoch never reaches zero.
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub base_lr: f64,
    pub max_epoch: usize,
    pub warmup_epochs: usize,
    pub warmup_lr: f64,
}

impl Schedule {
    /// CoOp's defaults: lr 0.002, one constant warm-up epoch at 1e-5.
    pub fn coop(max_epoch: usize) -> Self {
        Schedule {
            base_lr: 0.002,
            max_epoch,
            warmup_epochs: 1,
            warmup_lr: 1e-5,
        }
    }

    /// Learning rate used throughout 0-based epoch `epoch`.
    pub fn lr(&self, epoch: usize) -> f64 {
        if epoch < self.warmup_epochs {
            return self.warmup_lr;
        }
        let t = (epoch - self.warmup_epochs) as f64;
        0.5 * self.base_lr * (1.0 + (std::f64::consts::PI * t / self.max_epoch as f64).cos())
    }

    /// The rate of every epoch, in order.
    pub fn all(&self) -> Vec<f64> {
        (0..self.max_epoch).map(|e| self.lr(e)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coop_schedule_shape() {
        let s = Schedule::coop(50);
        assert_eq!(s.lr(0), 1e-5);
        assert!((s.lr(1) - 0.002).abs() < 1e-15);
        let last = 0.001 * (1.0 + (std::f64::consts::PI * 48.0 / 50.0).cos());
        assert!((s.lr(49) - last).abs() < 1e-15);
        assert!(s.all().windows(2).skip(1).all(|w| w[1] < w[0]));
    }
}
