"""C tier: loads the cffi extension built from ``csrc/`` by ``setup.py`` and registers its kernels.

``load()`` returns None when the C tier is usable, otherwise the reason it is not (the extension was
not built because no C compiler was found, or ``TINYEFF_NO_C=1`` simulates that).
"""
import os


def load():
    """Import the compiled extension and register the C kernels; return the reason on failure."""
    if os.environ.get("TINYEFF_NO_C", "") not in ("", "0"):
        return "TINYEFF_NO_C is set (simulating a machine without a C compiler)"
    try:
        from tinyeff import _tinyeff_c  # noqa: F401  (built by setup.py through cffi)
    except ImportError as exc:
        return (f"the C extension is not built ({exc}); install a C compiler (apt-get install gcc) "
                "and re-run pip install -e .")
    return None
