"""Stochastic gradient descent with momentum, Nesterov momentum and L2 weight decay, using
PyTorch's update equations (Sutskever et al. 2013 form):

    g = grad + weight_decay * p
    buf = g                                  (first step)
    buf = momentum * buf + (1 - dampening) * g   (later steps)
    g = g + momentum * buf  if nesterov  else  buf
    p = p - lr * g
"""
import numpy as np

from tinyeff.optim.optimizer import Optimizer


class SGD(Optimizer):
    def __init__(self, params, lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
        super().__init__(params, lr)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum needs momentum > 0 and dampening = 0")
        self.momentum, self.dampening, self.nesterov = momentum, dampening, nesterov
        self.weight_decay = weight_decay

    def update(self, p, grad, state):
        # One scratch array per call, updated in place (four temporaries per parameter otherwise);
        # the same float operations in the same order as the equations above, so the same bits.
        scratch = np.multiply(p.data, self.weight_decay) if self.weight_decay else np.empty_like(p.data)
        g = grad
        if self.weight_decay:
            scratch += grad
            g = scratch
        if self.momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = g.copy()
            else:
                buf *= self.momentum
                buf += g if self.dampening == 0 else (1 - self.dampening) * g
            g = g + self.momentum * buf if self.nesterov else buf
        p.data -= np.multiply(g, self.lr, out=scratch)
