"""The comparison report a student reads: tables that fit, one colour per variant in every panel,
the right loss name per variant, integer epoch ticks, no point hidden behind another, the
fine-tuning caveat and the memory columns."""
import re

import numpy as np
import pytest

from tinyeff.report import html, plots, tables

VARIANTS = ("baseline", "pruned", "quantized", "fp16", "mixed_fp16", "distilled")


def row(name, accuracy, energy, extra=0, loss="cross-entropy"):
    history = {"epoch": [1, 2, 3], "train_loss": [1.0, 0.7, 0.5], "test_loss": [0.9, 0.8, 0.7],
               "test_accuracy": [0.7, 0.75, 0.8], "energy_j": [0.5, 0.5, 0.5]}
    return {"variant": name, "description": f"{name} variant", "accuracy": accuracy, "accuracy_delta_points": 0.0,
            "latency_ms": 0.3, "throughput_ips": 9000.0, "speedup_throughput": 1.0, "macs_dense": 2_000_000,
            "macs_effective": 1_000_000, "params_nonzero": 5000, "model_file_bytes": 40_000,
            "energy_per_image_j": energy, "energy_source": "model", "energy_estimated": True,
            "efficiency_acc_per_j": accuracy / energy, "param_bytes": 20_000, "activation_bytes": 30_000,
            "train_epochs": 4 + extra, "extra_epochs": extra, "loss_name": loss, "train_time_s": 10.0,
            "train_energy_j": 1.5, "history": history, "notes": [], "confusion": [[1, 0], [0, 1]]}


@pytest.fixture
def results():
    rows = [row("baseline", 0.80, 2e-5), row("pruned", 0.82, 1e-5, extra=3), row("quantized", 0.79, 0.5e-5),
            row("fp16", 0.80, 2e-5), row("mixed_fp16", 0.78, 2e-5), row("distilled", 0.77, 1e-5, loss="distillation loss")]
    return {"model": "seed-cnn", "data": "synthetic", "rows": rows, "config": {"test_images": 100},
            "energy_note": "Energy figures are ESTIMATES.", "plots": {}, "versions": {}, "machine": {},
            "wall_time_s": 12.0, "peak_rss_bytes": 300 << 20}


@pytest.fixture
def figures(monkeypatch):
    """Capture the figures the plot functions would save."""
    captured = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: captured.append(fig) or path)
    return captured


def test_report_tables_fit_a_page(results, tmp_path):
    page = html.render(results, str(tmp_path))
    tables_html = re.findall(r"<table>.*?</table>", page, flags=re.S)
    assert len(tables_html) == 2
    for t in tables_html:
        assert len(re.findall(r"<th>", t)) <= 10         # no horizontal scroll at 1400 px (checked in Chromium)
    assert "overflow-x: auto; }" not in page.split("pre {")[0]


def test_report_has_memory_and_epoch_columns_and_the_caveat(results, tmp_path):
    page = html.render(results, str(tmp_path))
    for header in ("weights in memory (KiB)", "activations b=1 (KiB)", "training epochs"):
        assert header in page
    assert "7 (4 + 3 fine-tuning)" in page
    assert "Caveat: pruned trained 3 epoch(s) of fine-tuning beyond the baseline" in page
    assert "peak memory (RSS) of the whole run 300 MiB" in page
    assert "Caveat" in tables.markdown(results)


def test_no_caveat_when_nothing_trained_longer(results, tmp_path):
    for r in results["rows"]:
        r["extra_epochs"] = 0
    assert "Caveat" not in html.render(results, str(tmp_path))


def test_each_variant_keeps_one_colour_in_every_panel(results, figures):
    rows = results["rows"]
    colors = plots.variant_colors(VARIANTS)
    assert len(set(colors.values())) == len(VARIANTS)
    histories = {r["variant"]: r["history"] for r in rows}
    plots.accuracy_vs_energy(rows, "a.png", colors=colors)
    plots.training_curves(histories, "t.png", colors, {r["variant"]: r["loss_name"] for r in rows})
    plots.cumulative_energy(histories, "e.png", colors=colors)
    scatter, curves, energy = figures
    scatter_colors = {c.get_label().split(" (")[0]: tuple(c.get_facecolor()[0][:3]) for c in scatter.axes[0].collections}
    assert scatter_colors == {v: tuple(colors[v]) for v in VARIANTS}
    for ax in curves.axes + energy.axes:
        for line in ax.get_lines():
            name = line.get_label().split(" (")[0]
            assert tuple(np.asarray(line.get_color())[:3]) == tuple(colors[name])


def test_distilled_loss_is_labelled_as_such(results, figures):
    rows = results["rows"]
    plots.training_curves({r["variant"]: r["history"] for r in rows}, "t.png", None,
                          {r["variant"]: r["loss_name"] for r in rows})
    ax_loss = figures[0].axes[0]
    labels = [line.get_label() for line in ax_loss.get_lines()]
    assert "distilled (train, distillation loss)" in labels and "baseline (train)" in labels
    assert "distillation loss" in ax_loss.get_ylabel()


def test_epoch_ticks_are_integers(results, figures):
    plots.training_curves({"baseline": results["rows"][0]["history"]}, "t.png")
    fig = figures[0]
    fig.canvas.draw()
    for ax in fig.axes:
        ticks = ax.get_xticks()
        assert np.array_equal(ticks, np.round(ticks))


def test_points_on_the_same_spot_are_spread_and_each_labelled(results, figures):
    plots.accuracy_vs_energy(results["rows"], "a.png")
    fig = figures[0]
    fig.canvas.draw()
    ax = fig.axes[0]
    spots = {}
    for c in ax.collections:
        x, y = c.get_offset_transform().transform(c.get_offsets()[0])
        spots.setdefault((round(x), round(y)), []).append(c)
    assert len(spots) == len(ax.collections)                  # baseline and fp16 share data, not pixels
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "baseline (same spot as fp16)" in legend and "fp16 (same spot as baseline)" in legend
