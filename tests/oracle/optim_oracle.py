"""Reference values for the optimiser, schedule and SubPT projection, computed with PyTorch
(torch.optim.SGD + CosineAnnealingLR behind a constant warm-up, as Dassl configures CoOp) and
scikit-learn (PCA). Usage: optim_oracle.py OUT_DIR"""
import sys

import numpy as np
import torch
from safetensors.torch import save_file
from sklearn.decomposition import PCA


class ConstantWarmup(torch.optim.lr_scheduler.LRScheduler):
    """Constant lr for the warm-up epochs; afterwards the successor is stepped instead."""

    def __init__(self, optimizer, successor, warmup_epochs, warmup_lr):
        self.successor = successor
        self.warmup_epochs = warmup_epochs
        self.warmup_lr = warmup_lr
        super().__init__(optimizer)

    def get_lr(self):
        if self.last_epoch >= self.warmup_epochs:
            return self.successor.get_last_lr()
        return [self.warmup_lr for _ in self.base_lrs]

    def step(self, epoch=None):
        if self.last_epoch >= self.warmup_epochs:
            self.successor.step()
            self._last_lr = self.successor.get_last_lr()
        else:
            super().step()


def pca_case(rng, points, dim, rank):
    base = rng.standard_normal((points, 3)) @ rng.standard_normal((3, dim))
    traj = np.cumsum(base + 0.05 * rng.standard_normal((points, dim)), axis=0)
    pca = PCA(n_components=rank, svd_solver="full").fit(traj)
    return {
        "traj": torch.from_numpy(traj),
        "components": torch.from_numpy(pca.components_),
        "explained_variance": torch.from_numpy(pca.explained_variance_),
        "explained_variance_ratio": torch.from_numpy(pca.explained_variance_ratio_),
    }


def sgd_case(rng, epochs, steps_per_epoch, project, warmup_epochs=1):
    shape = (4, 8)
    theta0 = torch.from_numpy(rng.standard_normal(shape).astype(np.float32) * 0.02)
    grads = torch.from_numpy(rng.standard_normal((epochs * steps_per_epoch,) + shape).astype(np.float32))
    q, _ = np.linalg.qr(rng.standard_normal((32, 5)))
    u = torch.from_numpy(np.ascontiguousarray(q.T).astype(np.float32))
    p = torch.nn.Parameter(theta0.clone())
    opt = torch.optim.SGD([p], lr=0.002, momentum=0.9, weight_decay=5e-4, dampening=0, nesterov=False)
    cos = torch.optim.lr_scheduler.CosineAnnealingLR(opt, float(epochs))
    sched = ConstantWarmup(opt, cos, warmup_epochs, 1e-5)
    thetas, lrs = [], []
    k = 0
    for _ in range(epochs):
        lrs.append(opt.param_groups[0]["lr"])
        for _ in range(steps_per_epoch):
            g = grads[k]
            if project:
                g = (u.T @ (u @ g.reshape(-1, 1))).reshape(shape)
            p.grad = g.clone()
            opt.step()
            thetas.append(p.detach().clone())
            k += 1
        sched.step()
    return {
        "theta0": theta0,
        "grads": grads,
        "u": u,
        "thetas": torch.stack(thetas),
        "lrs": torch.tensor(lrs, dtype=torch.float64),
    }


def main(out):
    rng = np.random.default_rng(7)
    for i, (points, dim, rank) in enumerate([(10, 64, 5), (20, 128, 10), (6, 8192, 5)]):
        save_file({k: v.contiguous() for k, v in pca_case(rng, points, dim, rank).items()}, f"{out}/pca_{i}.safetensors")
    for i, (epochs, steps, project) in enumerate([(5, 3, False), (8, 2, True), (50, 1, True), (3, 4, True)]):
        save_file(sgd_case(rng, epochs, steps, project), f"{out}/sgd_{i}.safetensors")


if __name__ == "__main__":
    main(sys.argv[1])
