"""``--data PATH``: MedMNIST-layout .npz files and image folders, from the library and the CLI."""
import json

import numpy as np
import pytest
from PIL import Image

from tinyeff import data, io
from tinyeff.cli import main
from tinyeff.errors import DataFormatError


def write_medmnist(path, rng, n=(120, 20, 40), rgb=False, classes=3):
    """A MedMNIST-layout .npz whose classes differ in brightness (so a small model learns them)."""
    arrays = {}
    for part, count in zip(("train", "val", "test"), n):
        labels = rng.integers(0, classes, (count, 1)).astype(np.uint8)
        shape = (count, 28, 28, 3) if rgb else (count, 28, 28)
        noise = rng.integers(0, 60, shape)
        arrays[f"{part}_images"] = (noise + labels.reshape(-1, *[1] * (len(shape) - 1)) * 90).astype(np.uint8)
        arrays[f"{part}_labels"] = labels
    np.savez(path, **arrays)
    return arrays


def write_folder(root, rng, classes=("cat", "dog"), n=10, sizes=((20, 24),), mode="RGB"):
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            h, w = sizes[i % len(sizes)]
            a = (rng.integers(0, 80, (h, w, 3)) + 120 * c).astype(np.uint8)
            Image.fromarray(a).convert(mode).save(root / name / f"{i}.png")


def test_medmnist_npz_grey_loads_as_nchw(tmp_path, rng):
    arrays = write_medmnist(tmp_path / "m.npz", rng)
    train, test = data.load(str(tmp_path / "m.npz"))
    assert train.images.shape == (120, 1, 28, 28) and test.images.shape == (40, 1, 28, 28)
    np.testing.assert_array_equal(train.images[:, 0], arrays["train_images"])
    np.testing.assert_array_equal(test.labels, arrays["test_labels"].ravel())
    assert train.classes == ("0", "1", "2")


def test_medmnist_npz_rgb_and_resize(tmp_path, rng):
    write_medmnist(tmp_path / "m.npz", rng, rgb=True)
    train, _ = data.load(str(tmp_path / "m.npz"), image_size=16)
    assert train.images.shape == (120, 3, 16, 16)


def test_multilabel_npz_is_refused(tmp_path, rng):
    arrays = write_medmnist(tmp_path / "m.npz", rng)
    arrays["train_labels"] = rng.integers(0, 2, (120, 14)).astype(np.uint8)
    np.savez(tmp_path / "multi.npz", **arrays)
    with pytest.raises(DataFormatError, match="multi-label"):
        data.load(str(tmp_path / "multi.npz"))


def test_npz_missing_arrays_are_named(tmp_path):
    np.savez(tmp_path / "x.npz", images=np.zeros((2, 4, 4), np.uint8))
    with pytest.raises(DataFormatError, match=r"missing arrays \['train_images'"):
        data.load(str(tmp_path / "x.npz"))


def test_class_folder_tree_is_split_per_class_by_seed(tmp_path, rng):
    write_folder(tmp_path / "imgs", rng, n=10)
    train, test = data.load(str(tmp_path / "imgs"), test_fraction=0.3, seed=1)
    assert train.classes == ("cat", "dog") and train.images.shape[1:] == (3, 20, 24)
    assert np.bincount(test.labels).tolist() == [3, 3] and len(train) == 14
    again, _ = data.load(str(tmp_path / "imgs"), test_fraction=0.3, seed=1)
    np.testing.assert_array_equal(again.images, train.images)


def test_train_test_folders_and_grey_images(tmp_path, rng):
    write_folder(tmp_path / "d" / "train", rng, n=4, mode="L")
    write_folder(tmp_path / "d" / "test", rng, n=2, mode="L")
    train, test = data.load(str(tmp_path / "d"))
    assert train.images.shape == (8, 1, 20, 24) and len(test) == 4


def test_mixed_sizes_need_image_size(tmp_path, rng):
    write_folder(tmp_path / "imgs", rng, n=4, sizes=((20, 24), (30, 30)))
    with pytest.raises(DataFormatError, match="--image-size"):
        data.load(str(tmp_path / "imgs"))
    train, _ = data.load(str(tmp_path / "imgs"), image_size=12)
    assert train.images.shape[1:] == (3, 12, 12)


def test_cli_trains_on_a_medmnist_npz_and_records_classes(tmp_path, rng, capsys):
    write_medmnist(tmp_path / "m.npz", rng)
    out = tmp_path / "run"
    assert main(["train", "--data", str(tmp_path / "m.npz"), "--epochs", "1", "--batch-size", "32",
                 "--out", str(out), "--no-progress"]) == 0
    model = io.load(out / "model.npz")
    assert model.preprocess["classes"] == ["0", "1", "2"] and model.preprocess["image_size"] == [28, 28]
    capsys.readouterr()
    assert main(["eval", str(out), "--data", str(tmp_path / "m.npz"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 40 and result["accuracy"] > 0.5          # brightness separates the classes


def test_cli_trains_on_an_image_folder_and_predicts(tmp_path, rng, capsys):
    write_folder(tmp_path / "imgs", rng, n=12, sizes=((20, 24), (26, 22)))
    out = tmp_path / "run"
    assert main(["train", "--data", str(tmp_path / "imgs"), "--image-size", "20", "--model", "seed-cnn",
                 "--epochs", "2", "--batch-size", "8", "--lr", "3e-3", "--out", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    images = [str(tmp_path / "imgs" / c / "0.png") for c in ("cat", "dog")]
    assert main(["predict", str(out), *images, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["class"] for r in rows] == ["cat", "dog"]
    assert all(abs(sum(t["probability"] for t in r["top"]) - 1.0) < 1e-6 for r in rows)   # both classes listed


def test_data_path_that_does_not_exist_is_one_line(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="MedMNIST layout"):
        data.load(str(tmp_path / "nothing.npz"))


def test_predict_runs_an_int8_model_file_with_its_preprocessing(tmp_path, rng, capsys):
    from tinyeff import models, quant, train
    write_medmnist(tmp_path / "m.npz", rng)
    tr, _ = data.load(str(tmp_path / "m.npz"))
    model = models.build_model("seed-cnn", tr)
    train.fit(model, tr, epochs=1, batch_size=32, progress=False)
    qmodel = quant.quantize_static(model, tr, num_images=64)
    quant.save_quantized(qmodel, tmp_path / "q.npz")
    Image.fromarray(tr.images[0, 0]).save(tmp_path / "x.png")
    assert main(["predict", str(tmp_path / "q.npz"), str(tmp_path / "x.png"), "--json"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert row["class"] in ("0", "1", "2") and len(row["top"]) == 3
