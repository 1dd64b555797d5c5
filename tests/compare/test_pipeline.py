"""The comparison pipeline end to end on small synthetic data: every output exists and says what it is."""
import csv
import json
import re

import pytest

from tinyeff.compare import run_compare
from tinyeff.report import html


@pytest.fixture(scope="module")
def compare_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare")
    results = run_compare("seed-cnn", "synthetic", ("baseline",), str(out), epochs=1, progress=False,
                          log=lambda msg: None, min_time_s=0.05,
                          data_options={"n_train": 192, "n_test": 64, "shape": (1, 20, 20), "num_classes": 4})
    return out, results


def test_results_files_are_written(compare_run):
    out, results = compare_run
    for name in ("results.json", "results.csv", "results.md", "report.html"):
        assert (out / name).stat().st_size > 0
    saved = json.loads((out / "results.json").read_text())
    assert saved["config"]["seed"] == 0 and "numpy" in saved["versions"]
    row = saved["rows"][0]
    for key in ("accuracy", "latency_ms", "throughput_ips", "speedup_throughput", "macs_dense", "macs_effective",
                "params_nonzero", "model_file_bytes", "energy_per_image_j", "energy_source",
                "efficiency_acc_per_j", "train_time_s", "train_energy_j"):
        assert row[key] is not None, key
    assert row["speedup_throughput"] == 1.0
    assert row["model_file_bytes"] == (out / row["model_file"]).stat().st_size


def test_csv_has_one_row_per_variant(compare_run):
    out, results = compare_run
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["variant"] for r in rows] == [r["variant"] for r in results["rows"]]


def test_markdown_table_labels_estimated_energy(compare_run):
    out, results = compare_run
    text = (out / "results.md").read_text()
    assert "| baseline |" in text
    if all(r["energy_estimated"] for r in results["rows"]):
        assert "estimated (model)" in text and "ESTIMATES" in text


def test_html_report_is_self_contained(compare_run):
    out, results = compare_run
    page = (out / "report.html").read_text()
    assert not re.search(r"(src|href)=['\"]?(https?:|//)", page)
    images = re.findall(r"<img [^>]*src='([^']*)'", page)
    assert len(images) == len(results["plots"]) >= 5
    assert all(src.startswith("data:image/png;base64,") for src in images)


def test_unknown_variant_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown variant 'magic'"):
        run_compare("seed-cnn", "synthetic", ("baseline", "magic"), str(tmp_path))


def test_render_escapes_variant_text(compare_run):
    out, results = compare_run
    tampered = json.loads(json.dumps(results))
    tampered["rows"][0]["description"] = "<script>alert(1)</script>"
    assert "<script>" not in html.render(tampered, str(out))
