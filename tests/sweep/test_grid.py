"""Sweep grids: comma lists, "+" joins, products, canonical configs and their hashes, TOML blocks."""
import pytest

from tinyeff.sweep import grid


def test_comma_list_gives_one_value_per_item():
    assert grid.parse_axis("lr", "0.001, 0.01,0.1") == [0.001, 0.01, 0.1]
    assert grid.parse_axis("shortcut", "on,off") == [True, False]


def test_plus_joins_the_parts_of_a_list_value():
    assert grid.parse_axis("augment", "crop+flip,none") == [["crop", "flip"], []]


def test_bad_value_names_the_flag():
    with pytest.raises(ValueError, match="--batch-size"):
        grid.parse_axis("batch_size", "64,big")
    with pytest.raises(ValueError, match="unknown axis"):
        grid.parse_axis("learning_rate", "0.1")


def test_product_of_two_axes_has_four_points():
    points = grid.expand({"model": ["mlp", "seed-cnn"], "lr": [0.001, 0.01]})
    assert [(p["model"], p["lr"]) for p in points] == [("mlp", 0.001), ("mlp", 0.01),
                                                      ("seed-cnn", 0.001), ("seed-cnn", 0.01)]


def test_knobs_that_do_not_apply_are_dropped_and_duplicates_merged():
    points = grid.expand({"model": ["mlp", "resnet"], "depth": [8, 14], "shortcut": [True, False]})
    mlp = [p for p in points if p["model"] == "mlp"]
    assert len(mlp) == 1 and mlp[0]["depth"] is None and mlp[0]["shortcut"] is None
    assert len(points) == 1 + 4


def test_named_resnet_resolves_to_resnet_with_depth():
    a = grid.resolve({"model": "resnet20"})
    b = grid.resolve({"model": "resnet", "depth": 20})
    assert a == b and grid.config_id(a) == grid.config_id(b)
    with pytest.raises(ValueError, match="has depth 8"):
        grid.resolve({"model": "resnet8", "depth": 14})
    with pytest.raises(ValueError, match="6n \\+ 2"):
        grid.resolve({"model": "resnet", "depth": 10})


def test_config_id_changes_with_any_setting():
    base = grid.resolve({"model": "mlp"})
    assert grid.config_id(base) == grid.config_id(grid.resolve({"model": "mlp"}))
    assert grid.config_id(base) != grid.config_id(grid.resolve({"model": "mlp", "seed": 1}))


def test_pruning_settings_vanish_without_pruning():
    c = grid.resolve({"model": "mlp", "prune": "none", "prune_every": 3})
    assert c["prune_every"] is None and c["prune_sparsity"] is None


def test_toml_blocks_are_joined_and_inherit_top_level_keys(tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text('epochs = 2\nlimit = 100\n[[grid]]\nmodel = "resnet"\ndepth = [8, 14]\n'
                    'width = [0.5, 1]\n[[grid]]\nmodel = "mlp"\naugment = ["crop+flip", "none"]\n')
    points = grid.expand_blocks(grid.blocks_from_table(grid.load_toml(path)))
    assert len(points) == 4 + 2
    assert all(p["epochs"] == 2 and p["limit"] == 100 for p in points)
    assert [p["augment"] for p in points if p["model"] == "mlp"] == [["crop", "flip"], []]


def test_toml_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("model = [\n")
    with pytest.raises(ValueError, match="not valid TOML"):
        grid.load_toml(bad)
    with pytest.raises(ValueError, match="unknown axis 'colour'"):
        grid.blocks_from_table({"colour": "red"})


def test_label_shows_only_the_axes_that_vary():
    points = grid.expand({"model": ["mlp"], "lr": [0.001, 0.01]})
    assert grid.label(points[1], grid.varying_axes(points)) == "mlp lr=0.01"
