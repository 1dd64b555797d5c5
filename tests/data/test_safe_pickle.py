"""The restricted unpickler: NumPy arrays load, anything that would run code is refused unrun."""
import os
import pickle

import numpy as np
import pytest

from data_builders import py2_pickle
from tinyeff.data import safe_pickle
from tinyeff.errors import DataFormatError


class _RunsShell:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _CallsEval:
    def __reduce__(self):
        return (eval, ("1 + 1",))


def test_restricted_unpickler_loads_python2_array_dict():
    x = np.arange(12, dtype=np.uint8).reshape(3, 4)
    obj = safe_pickle.loads(py2_pickle({b"data": x, b"labels": [1, 2, 3]}), "data_batch_1")
    np.testing.assert_array_equal(obj[b"data"], x)
    assert obj[b"labels"] == [1, 2, 3]


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_restricted_unpickler_rejects_os_system_without_running_it(tmp_path, protocol):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({b"data": _RunsShell(marker)}, protocol=protocol)
    expected = r"data_batch_1: refused to unpickle \(global (posix|os)\.system is not allowed"
    with pytest.raises(DataFormatError, match=expected):
        safe_pickle.loads(payload, "data_batch_1")
    assert not marker.exists()


def test_restricted_unpickler_rejects_builtins_eval():
    with pytest.raises(DataFormatError, match=r"(__builtin__|builtins)\.eval is not allowed"):
        safe_pickle.loads(pickle.dumps(_CallsEval(), protocol=2), "batches.meta")


def test_restricted_codecs_encode_only_latin1():
    # _codecs.encode is allowed for protocol-2 bytes, but only as latin1 text -> bytes
    payload = b"\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00abcX\x06\x00\x00\x00base64\x86R."
    with pytest.raises(DataFormatError, match="is not allowed"):
        safe_pickle.loads(payload, "test_batch")
    ok = b"\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00abcX\x06\x00\x00\x00latin1\x86R."
    assert safe_pickle.loads(ok, "test_batch") == b"abc"
