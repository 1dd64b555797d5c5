"""Adam (Kingma & Ba 2015) and AdamW (Loshchilov & Hutter 2019), PyTorch's equations:

    Adam:   g = grad + weight_decay * p                  (L2 penalty inside the gradient)
    AdamW:  p = p * (1 - lr * weight_decay)              (decoupled decay), g = grad
    m = b1 * m + (1 - b1) * g ;  v = b2 * v + (1 - b2) * g^2
    p = p - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
"""
import numpy as np

from tinyeff.optim.optimizer import Optimizer


class Adam(Optimizer):
    decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr)
        self.betas, self.eps, self.weight_decay = betas, eps, weight_decay

    def update(self, p, grad, state):
        b1, b2 = self.betas
        if self.weight_decay and self.decoupled:
            p.data *= 1 - self.lr * self.weight_decay
            g = grad
        elif self.weight_decay:
            g = grad + self.weight_decay * p.data
        else:
            g = grad
        if "m" not in state:
            state["m"], state["v"], state["t"] = np.zeros_like(p.data), np.zeros_like(p.data), np.asarray(0)
        state["t"] = np.asarray(int(state["t"]) + 1)
        t = int(state["t"])
        m, v = state["m"], state["v"]
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * g * g
        m_hat = m / (1 - b1 ** t)
        v_hat = v / (1 - b2 ** t)
        p.data -= (self.lr * m_hat / (np.sqrt(v_hat) + self.eps)).astype(p.data.dtype, copy=False)


class AdamW(Adam):
    decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr, betas, eps, weight_decay)
