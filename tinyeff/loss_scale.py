"""Dynamic loss scaling: keep small float16 gradients from flushing to zero without letting big ones overflow.

float16 has a 5-bit exponent: its smallest normal value is 2**-14 (about 6e-5) and its largest is
65504. Backpropagated gradients are often smaller than 2**-14, so in float16 they would become
zero. The fix (Micikevicius et al. 2018, "Mixed Precision Training") multiplies the loss by a scale
S before backward, so every gradient in the graph is S times larger, then divides the float32
master gradients by S before the optimizer step. A scale that is too large makes some gradient
overflow to inf; then the step is skipped (the weights stay as they were) and S is halved. After
``growth_interval`` good steps in a row, S doubles again, so the scale hovers just below the
overflow point. The defaults are PyTorch's ``torch.amp.GradScaler``.

What this file leaves out: the casting itself (``tinyeff/precision.py``) and per-parameter-group
scales (one scale for the whole model, as PyTorch does).
"""
import numpy as np


class DynamicLossScaler:
    """A loss scale that halves on overflow and doubles after a run of finite steps.

    Args:
        init_scale: the first scale S (2**16 as in PyTorch).
        growth_factor: multiply S by this after ``growth_interval`` finite steps in a row.
        backoff_factor: multiply S by this when a step's gradients hold inf or NaN.
        growth_interval: number of consecutive finite steps before S grows.
        min_scale: S never drops below this (so a model that always overflows keeps a usable scale).
    """

    def __init__(self, init_scale=2.0 ** 16, growth_factor=2.0, backoff_factor=0.5, growth_interval=2000,
                 min_scale=1.0):
        if init_scale <= 0 or min_scale <= 0:
            raise ValueError(f"DynamicLossScaler: init_scale={init_scale} and min_scale={min_scale} must be positive")
        if growth_factor <= 1 or not 0 < backoff_factor < 1:
            raise ValueError(f"DynamicLossScaler: growth_factor={growth_factor} must be > 1 and "
                             f"backoff_factor={backoff_factor} in (0, 1)")
        if growth_interval < 1:
            raise ValueError(f"DynamicLossScaler: growth_interval={growth_interval} must be >= 1")
        self.scale = float(init_scale)
        self.growth_factor, self.backoff_factor = float(growth_factor), float(backoff_factor)
        self.growth_interval, self.min_scale = int(growth_interval), float(min_scale)
        self.good_steps = 0        # finite steps since the last growth or overflow
        self.steps = 0             # every call to update()
        self.skipped_steps = 0     # steps whose gradients overflowed

    def unscale_(self, params):
        """Divide every ``p.grad`` by the scale in place (in float32); return True if all are finite.

        Args:
            params: the optimizer's parameters; their ``.grad`` arrays are float32 master gradients.
        """
        finite = True
        inv_scale = np.float32(1.0 / self.scale)
        for p in params:
            if p.grad is None:
                continue
            p.grad = p.grad.astype(np.float32, copy=False) * inv_scale
            # NOTE: check after unscaling: an inf stays inf, and NaN (inf - inf upstream) stays NaN
            if finite and not np.isfinite(p.grad).all():
                finite = False
        return finite

    def update(self, found_inf):
        """Adjust the scale after one step: back off on overflow, grow after a run of good steps."""
        self.steps += 1
        if found_inf:
            self.skipped_steps += 1
            self.good_steps = 0
            self.scale = max(self.scale * self.backoff_factor, self.min_scale)
            return
        self.good_steps += 1
        if self.good_steps >= self.growth_interval:
            self.scale *= self.growth_factor
            self.good_steps = 0

    def state_dict(self):
        return {"scale": self.scale, "good_steps": self.good_steps, "steps": self.steps,
                "skipped_steps": self.skipped_steps}

    def load_state_dict(self, state):
        self.scale = float(state["scale"])
        self.good_steps, self.steps = int(state["good_steps"]), int(state["steps"])
        self.skipped_steps = int(state["skipped_steps"])
