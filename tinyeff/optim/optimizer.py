"""Optimizer base: holds the parameter list, the learning rate and per-parameter state arrays.

State is a list of dicts of ndarrays, one per parameter, so ``state_dict()`` is plain arrays (saved
in checkpoints as .npz, no pickle) and resuming reproduces the exact same trajectory.
"""
import numpy as np


class Optimizer:
    def __init__(self, params, lr):
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list; pass model.parameters()")
        if lr <= 0:
            raise ValueError(f"{type(self).__name__}: lr={lr} must be positive")
        self.lr = float(lr)
        self.state = [dict() for _ in self.params]
        self.step_count = 0

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def step(self):
        """Apply one update to every parameter that has a gradient."""
        self.step_count += 1
        for p, state in zip(self.params, self.state):
            if p.grad is not None:
                self.update(p, p.grad.astype(p.data.dtype, copy=False), state)

    def update(self, p, grad, state):
        raise TypeError(f"{type(self).__name__} must define update(p, grad, state)")

    def state_dict(self):
        """Flat name -> ndarray: ``lr``, ``step_count`` and ``<index>.<key>`` for every state array."""
        out = {"lr": np.asarray(self.lr), "step_count": np.asarray(self.step_count)}
        for i, state in enumerate(self.state):
            for key, value in state.items():
                out[f"{i}.{key}"] = np.asarray(value)
        return out

    def load_state_dict(self, state):
        self.lr = float(state["lr"])
        self.step_count = int(state["step_count"])
        self.state = [dict() for _ in self.params]
        for name, value in state.items():
            if "." in name:
                index, key = name.split(".", 1)
                self.state[int(index)][key] = np.array(value)
