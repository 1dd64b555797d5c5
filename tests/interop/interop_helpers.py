"""Helpers shared by the interop tests (imported by name: the test folders are not packages)."""
import numpy as np
import pytest


def need(module, install):
    """Import ``module`` or skip the test with the command that installs it."""
    return pytest.importorskip(module, reason=f"needs {module}: pip install {install}")


def randomize_batch_norm(model, rng):
    """Non-trivial running statistics and affine parameters, so BN export/import is really exercised."""
    from tinyeff import nn
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            c = m.num_features
            m.running_mean = rng.normal(0, 0.2, c).astype(np.float32)
            m.running_var = rng.uniform(0.5, 2.0, c).astype(np.float32)
            m.weight.data = rng.uniform(0.5, 1.5, c).astype(np.float32)
            m.bias.data = rng.normal(0, 0.2, c).astype(np.float32)
    return model.eval()
