"""``tinyeff data info`` / ``download`` through the real argument parser."""
from data_builders import write_fashion
from tinyeff.cli import main


def test_data_info_synthetic(capsys):
    assert main(["data", "info", "synthetic"]) == 0
    out = capsys.readouterr().out
    assert "train: 1,000 images, shape (1, 28, 28) uint8" in out and "class_9" in out


def test_data_info_fashion_reports_where_found(tmp_path, rng, capsys):
    write_fashion(tmp_path, rng)
    assert main(["data", "info", "fashion-mnist", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"found at: {tmp_path}" in out and "test: 12 images" in out and "Ankle boot" in out


def test_data_info_missing_dataset_exits_1_with_fix(tmp_path, capsys):
    assert main(["data", "info", "cifar10", "--root", str(tmp_path)]) == 1
    assert "tinyeff data download cifar10" in capsys.readouterr().err


def test_data_download_unreachable_mirror_exits_1(tmp_path, capsys, file_server):
    server = file_server({})  # serves nothing: every file is a 404
    assert main(["data", "download", "cifar10", "--root", str(tmp_path), "--mirror", server.url]) == 1
    assert "404" in capsys.readouterr().err
    assert not any((tmp_path / "cifar10").iterdir())


def test_data_download_offline_error_names_url_mirror_and_manual_place(tmp_path, capsys):
    # a URL whose host cannot be resolved stands for an offline machine
    assert main(["data", "download", "cifar10", "--root", str(tmp_path), "--mirror", "http://tinyeff.invalid"]) == 1
    err = capsys.readouterr().err
    assert "http://tinyeff.invalid/cifar-10-binary.tar.gz" in err and "--mirror" in err
    assert f"place the file at {tmp_path / 'cifar10' / 'cifar-10-binary.tar.gz'}" in err
