"""Model files: save/load round trip, and every kind of damage failing with ModelFileError that
names the problem (truncation, corruption, another architecture, a wrong-shaped tensor, pickles)."""
import json
import os
import zipfile

import numpy as np
import pytest

import tinyeff
from tinyeff import Tensor, io, models, no_grad
from tinyeff.errors import ModelFileError


@pytest.fixture
def small_model():
    tinyeff.manual_seed(0)
    model = models.create("resnet", depth=8, width=4)
    with no_grad():
        model(Tensor(np.random.default_rng(0).standard_normal((4, 3, 8, 8)).astype(np.float32)))  # move BN stats
    return model.eval()


@pytest.fixture
def saved(small_model, tmp_path):
    path = tmp_path / "model.npz"
    io.save(small_model, path, accuracy=0.5)
    return path


def rewrite(path, mutate_header=None, mutate_arrays=None):
    """Rewrite a saved model file with its header and/or arrays changed."""
    header, arrays = io.read(path)
    if mutate_header:
        mutate_header(header)
    if mutate_arrays:
        mutate_arrays(arrays)
    io.atomic_savez(path, {"__header__": io._encode_header(header), **arrays})


def test_round_trip_gives_identical_outputs(small_model, saved):
    loaded = io.load(saved).eval()
    x = Tensor(np.random.default_rng(1).standard_normal((2, 3, 8, 8)).astype(np.float32))
    with no_grad():
        np.testing.assert_array_equal(loaded(x).data, small_model(x).data)
    for name, value in small_model.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[name], value, err_msg=name)


def test_round_trip_keeps_arch_and_extra_header_fields(saved):
    header, arrays = io.read(saved)
    assert header["arch"] == {"name": "resnet", "kwargs": {"depth": 8, "width": 4}}
    assert header["kind"] == "float" and header["accuracy"] == 0.5
    assert header["tensors"]["conv1.weight"] == [4, 3, 3, 3]
    assert io.load(saved).arch == header["arch"]


def test_save_returns_file_size(small_model, tmp_path):
    path = tmp_path / "m.npz"
    assert io.save(small_model, path) == os.path.getsize(path)


def test_save_leaves_no_temporary_files(small_model, tmp_path):
    io.save(small_model, tmp_path / "m.npz")
    assert os.listdir(tmp_path) == ["m.npz"]


def test_save_without_arch_record_raises(tmp_path):
    from tinyeff import nn
    with pytest.raises(ValueError, match="no .arch record"):
        io.save(nn.Linear(2, 2), tmp_path / "m.npz")


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.5, 0.9, 0.999])
def test_truncated_file_raises_model_file_error(saved, fraction):
    data = saved.read_bytes()
    saved.write_bytes(data[:int(len(data) * fraction)])
    with pytest.raises(ModelFileError, match="truncated or corrupt"):
        io.load(saved)


def test_corrupted_member_data_raises_model_file_error(saved):
    """Flip bytes inside the compressed payload of the largest tensor (the zip directory stays intact)."""
    with zipfile.ZipFile(saved) as zf:
        info = max(zf.infolist(), key=lambda i: i.compress_size)
    data = bytearray(saved.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for k in range(start + 10, start + min(info.compress_size, 200) - 10):
        data[k] ^= 0xA5
    saved.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="truncated or corrupt"):
        io.load(saved)


def test_missing_file_raises_model_file_error(tmp_path):
    with pytest.raises(ModelFileError, match="no such model file"):
        io.load(tmp_path / "nope.npz")


def test_npz_without_header_raises(tmp_path):
    path = tmp_path / "plain.npz"
    np.savez(path, w=np.zeros(3))
    with pytest.raises(ModelFileError, match="no tinyeff header"):
        io.load(path)


def test_corrupt_header_raises(saved):
    _, arrays = io.read(saved)
    io.atomic_savez(saved, {"__header__": np.frombuffer(b"{not json", dtype=np.uint8), **arrays})
    with pytest.raises(ModelFileError, match="header is corrupt"):
        io.load(saved)


def test_file_from_another_architecture_names_the_architecture(small_model, tmp_path):
    path = tmp_path / "mixed.npz"
    other = models.create("seed-cnn", in_channels=1, input_size=28)
    io.save(small_model, path, arrays=other.state_dict())      # header says resnet, tensors are seed-cnn
    with pytest.raises(ModelFileError, match=r"does not fit architecture 'resnet'.*missing.*conv1.weight"):
        io.load(path)


def test_unknown_architecture_raises(saved):
    rewrite(saved, mutate_header=lambda h: h.update(arch={"name": "transformer", "kwargs": {}}))
    with pytest.raises(ModelFileError, match="cannot rebuild architecture.*unknown model 'transformer'"):
        io.load(saved)


def test_bad_architecture_kwargs_raise(saved):
    rewrite(saved, mutate_header=lambda h: h["arch"]["kwargs"].update(depth=9))
    with pytest.raises(ModelFileError, match="cannot rebuild architecture"):
        io.load(saved)


def test_wrong_shaped_tensor_names_the_tensor(saved):
    def shrink(arrays):
        arrays["layers.1.0.conv1.weight"] = arrays["layers.1.0.conv1.weight"][:, :2]

    def list_it(header):                       # a consistent file: the architecture is what disagrees
        header["tensors"]["layers.1.0.conv1.weight"] = [8, 2, 3, 3]
    rewrite(saved, mutate_header=list_it, mutate_arrays=shrink)
    with pytest.raises(ModelFileError, match=r"'layers.1.0.conv1.weight' has shape \(8, 2, 3, 3\), the model "
                                             r"expects \(8, 4, 3, 3\)"):
        io.load(saved)


def test_tensor_listed_in_header_but_missing_raises(saved):
    rewrite(saved, mutate_arrays=lambda arrays: arrays.pop("fc.bias"))
    with pytest.raises(ModelFileError, match=r"missing: \['fc.bias'\]"):
        io.load(saved)


def test_pickled_object_array_is_refused(saved):
    """A file smuggling an object array (which only unpickling could read) must not be unpickled."""
    header, arrays = io.read(saved)
    arrays["fc.bias"] = np.array([{"evil": 1}], dtype=object)
    np.savez(saved, __header__=io._encode_header(header), **arrays)      # np.savez pickles object arrays
    with pytest.raises(ModelFileError, match="'fc.bias.npy' holds Python objects .* never unpickles"):
        io.load(saved)


def test_wrong_kind_is_refused(saved):
    with pytest.raises(ModelFileError, match="holds a float model, but a quantized model was expected"):
        io.load(saved, expect_kind="quantized")


def test_unregistered_kind_is_refused(saved):
    rewrite(saved, mutate_header=lambda h: h.update(kind="mystery"))
    with pytest.raises(ModelFileError, match="no loader for that kind"):
        io.load(saved)


def test_registered_loader_rebuilds_its_kind(saved):
    rewrite(saved, mutate_header=lambda h: h.update(kind="test-kind"))
    io.register_loader("test-kind", lambda header, arrays: ("rebuilt", header["kind"], len(arrays)))
    try:
        result = io.load(saved)
    finally:
        io._LOADERS.pop("test-kind")
    assert result[:2] == ("rebuilt", "test-kind") and result[2] > 0


def test_header_is_json_readable_without_tinyeff(saved):
    with np.load(saved, allow_pickle=False) as archive:
        header = json.loads(archive["__header__"].tobytes().decode("utf-8"))
    assert header["format_version"] == io.FORMAT_VERSION


def test_reserved_header_name_cannot_be_a_tensor(small_model, tmp_path):
    with pytest.raises(ValueError, match="reserved"):
        io.save(small_model, tmp_path / "m.npz", arrays={"__header__": np.zeros(1)})


@pytest.mark.parametrize("name,kwargs,shape", [
    ("seed-cnn", dict(in_channels=1, input_size=28, width=0.25), (2, 1, 28, 28)),
    ("mlp", dict(in_channels=1, input_size=6, hidden=(8, 4)), (3, 1, 6, 6)),     # tuple kwargs come back as lists
    ("mobilenet", dict(width_mult=0.125), (1, 3, 16, 16)),
])
def test_round_trip_for_other_architectures(name, kwargs, shape, tmp_path):
    tinyeff.manual_seed(0)
    model = models.create(name, **kwargs).eval()
    io.save(model, tmp_path / "m.npz")
    x = Tensor(np.random.default_rng(0).standard_normal(shape).astype(np.float32))
    with no_grad():
        np.testing.assert_array_equal(io.load(tmp_path / "m.npz").eval()(x).data, model(x).data)
