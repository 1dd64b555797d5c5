"""Plots for training and comparison reports, written as PNG files (matplotlib's Agg backend, no screen).

Each function takes plain data (lists, arrays, dicts), writes one PNG and returns its path, so the same
figures serve the CLI, the HTML report and notebooks. Functions that draw several runs take an optional
``colors`` dict (label -> colour, see ``variant_colors``) so a variant keeps its colour in every panel.
"""
import numpy as np

from tinyeff import fsio


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path):
    fsio.write_figure(fig, path, dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return path


def variant_colors(labels):
    """One fixed colour per label, in order (matplotlib's tab10 cycle), shared by every plot of a report."""
    palette = _pyplot().get_cmap("tab10").colors
    return {label: palette[i % len(palette)] for i, label in enumerate(labels)}


def _series_style(i):
    """Marker and size of the i-th run of an epoch plot: runs whose values coincide (the estimated
    training energy of two variants with the same work) stay visible as nested markers."""
    return {"marker": "osD^v<>ph*"[i % 10], "markersize": max(3.0, 9.0 - 1.5 * i), "zorder": 2 + i}


def _integer_epochs(ax):
    from matplotlib.ticker import MaxNLocator
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def confusion_matrix(confusion, classes, path, title="Confusion matrix"):
    """Heat map of ``confusion`` (K x K counts, rows = true class), annotated with row percentages."""
    plt = _pyplot()
    cm = np.asarray(confusion, dtype=np.float64)
    rates = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    im = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    k = len(classes)
    ax.set_xticks(range(k), labels=classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), labels=classes, fontsize=8)
    for i in range(k):
        for j in range(k):
            if cm[i, j]:
                ax.text(j, i, f"{100 * rates[i, j]:.0f}", ha="center", va="center", fontsize=7,
                        color="white" if rates[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046, label="fraction of the true class")
    return _save(fig, path)


def training_curves(histories, path, colors=None, loss_names=None):
    """Loss and test accuracy per epoch for one or more runs: ``histories`` maps a label to a history dict.

    Args:
        colors: label -> colour (default: tab10 in order).
        loss_names: label -> what its training loss is (default "cross-entropy"); runs whose training
            loss is something else (a distillation loss) say so in the legend, and the test loss, which
            is always cross-entropy, is drawn dashed.
    """
    plt = _pyplot()
    colors = colors or variant_colors(histories)
    loss_names = loss_names or {}
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4.2))
    for i, (label, h) in enumerate(histories.items()):
        c, loss_name, style = colors[label], loss_names.get(label, "cross-entropy"), _series_style(i)
        train_label = f"{label} (train)" if loss_name == "cross-entropy" else f"{label} (train, {loss_name})"
        ax_loss.plot(h["epoch"], h["train_loss"], color=c, label=train_label, **style)
        if any(v is not None for v in h.get("test_loss", [])):
            ax_loss.plot(h["epoch"], h["test_loss"], linestyle="--", color=c, label=f"{label} (test)",
                         **dict(style, marker="x"))
        if any(v is not None for v in h.get("test_accuracy", [])):
            ax_acc.plot(h["epoch"], [100 * a for a in h["test_accuracy"]], color=c, label=label, **style)
    other = sorted({n for n in loss_names.values() if n != "cross-entropy"})
    ax_loss.set(xlabel="epoch", ylabel="loss: cross-entropy" + "".join(f" / {n}" for n in other),
                title="Loss (train solid, test dashed)")
    ax_acc.set(xlabel="epoch", ylabel="test accuracy (%)", title="Accuracy")
    for ax in (ax_loss, ax_acc):
        _integer_epochs(ax)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return _save(fig, path)


def cumulative_energy(histories, path, estimated=True, colors=None):
    """Cumulative training energy per epoch for each run (J); the title says if it is an estimate."""
    plt = _pyplot()
    colors = colors or variant_colors(histories)
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for i, (label, h) in enumerate(histories.items()):
        energy = [e or 0.0 for e in h.get("energy_j", [])]
        if energy:
            ax.plot(h["epoch"][:len(energy)], np.cumsum(energy), color=colors[label], label=label, **_series_style(i))
    kind = "ESTIMATED (energy model, no RAPL here)" if estimated else "measured"
    ax.set(xlabel="epoch", ylabel="cumulative energy (J)", title=f"Training energy, {kind}")
    _integer_epochs(ax)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, path)


def accuracy_vs_energy(rows, path, estimated=True, colors=None):
    """Scatter: one point per variant, x = energy per image (uJ), y = test accuracy (%).

    Each variant has its colour (named in the legend, so no labels collide); variants on the same
    spot (16-bit storage computes exactly like the baseline) are spread side by side by a few points
    on screen and the legend says they share it, so no point hides another.
    """
    from matplotlib.transforms import offset_copy
    plt = _pyplot()
    colors = colors or variant_colors([r["variant"] for r in rows])
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    points = {}
    for row in rows:
        x, y = row["energy_per_image_j"] * 1e6, 100 * row["accuracy"]
        points.setdefault((round(x, 1), round(y, 1)), (x, y, []))[2].append(row["variant"])
    ax.update_datalim([(x, y) for x, y, _ in points.values()])     # the offset markers do not count
    ax.autoscale_view()
    for x, y, names in points.values():
        for i, name in enumerate(names):
            dx = 7 * (i - (len(names) - 1) / 2)                   # points, centred on the true spot
            shared = f" (same spot as {', '.join(n for n in names if n != name)})" if len(names) > 1 else ""
            ax.scatter([x], [y], s=60, color=colors[name], edgecolor="white", linewidth=0.6, zorder=3,
                       label=name + shared, transform=offset_copy(ax.transData, fig=fig, x=dx, y=0, units="points"))
    ax.margins(x=0.12, y=0.12)
    ax.legend(fontsize=7, loc="best")          # colours name the variants: no labels to collide
    kind = "estimated" if estimated else "measured"
    ax.set(xlabel=f"energy per image, µJ ({kind})", ylabel="test accuracy (%)", title="Accuracy vs energy")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def layer_breakdown(before, after, metric, path, labels=("baseline", "compressed"), unit="", colors=None):
    """Grouped bars per layer of ``metric`` before and after compression (dicts layer -> value)."""
    plt = _pyplot()
    colors = colors or variant_colors(labels)
    layers = list(before)
    x = np.arange(len(layers))
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(layers) + 2), 3.8))
    ax.bar(x - 0.2, [before[n] for n in layers], 0.4, label=labels[0], color=colors[labels[0]])
    ax.bar(x + 0.2, [after.get(n, 0) for n in layers], 0.4, label=labels[1], color=colors[labels[1]])
    ax.set_xticks(x, labels=layers, rotation=45, ha="right", fontsize=7)
    ax.set(ylabel=f"{metric}{f' ({unit})' if unit else ''}", title=f"Per-layer {metric}")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    return _save(fig, path)


def sparsity_speedup(points, path):
    """Measured speedup vs sparsity per layer against the ideal 1/(1-s).

    Args:
        points: dict layer -> list of (sparsity, measured speedup) pairs.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    s = np.linspace(0, 0.95, 50)
    ax.plot(100 * s, 1 / (1 - s), "k--", label="ideal 1/(1-s)")
    for layer, pts in points.items():
        pts = sorted(pts)
        ax.plot([100 * p[0] for p in pts], [p[1] for p in pts], marker="o", label=layer)
    ax.axhline(1.0, color="grey", linewidth=0.8)
    ax.set(xlabel="weight sparsity (%)", ylabel="speedup over dense (x)", yscale="log",
           title="Sparse kernel speedup, measured")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, path)
