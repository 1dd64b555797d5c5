"""Reference tier: plain NumPy, the contract every faster tier must meet."""
from tinyeff.kernels.ref import gemm, im2col, pool  # noqa: F401
from tinyeff.kernels.ref import int8  # noqa: F401
from tinyeff.kernels.ref import sparse  # noqa: F401
from tinyeff.kernels.ref import conv  # noqa: F401
from tinyeff.kernels.ref import norm  # noqa: F401
from tinyeff.kernels.ref import activation  # noqa: F401
