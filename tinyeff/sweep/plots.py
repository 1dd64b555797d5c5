"""The sweep's plots, one PNG each (matplotlib, Agg): they take plain rows, never the store.

A *row* is one finished run as ``report.rows`` builds it: ``label``, ``config``, ``accuracy``
(fraction), ``energy_j`` (cumulative training energy), ``macs_effective``, ``efficiency`` (accuracy
in % per joule) and ``epochs`` (per-epoch dicts from the store). Each function writes one file and
returns its path, or None when the sweep has nothing to show in it (no depth axis: no heatmap).
"""
import numpy as np

from tinyeff.report.plots import _pyplot, _save

MAX_LEGEND = 14


def _integer_epochs(ax):
    from matplotlib.ticker import MaxNLocator
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _legend(ax, n):
    _integer_epochs(ax)
    if n <= MAX_LEGEND:
        ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.01, 0.5))


def accuracy_over_epochs(rows, path):
    """Test accuracy per epoch, one line per run."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 4))
    for r in rows:
        epochs = [e["epoch"] for e in r["epochs"]]
        ax.plot(epochs, [100 * (e["test_accuracy"] or 0) for e in r["epochs"]], marker="o", markersize=3,
                label=r["label"])
    ax.set(xlabel="epoch", ylabel="test accuracy (%)", title=f"Accuracy over epochs ({len(rows)} runs)")
    ax.grid(alpha=0.3)
    _legend(ax, len(rows))
    return _save(fig, path)


def pareto_front(points):
    """Indices of the points no other point beats: (energy, accuracy), lower energy and higher accuracy."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], -np.inf
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def accuracy_vs_energy(rows, path, energy_kind):
    """Scatter of accuracy against cumulative training energy, with the Pareto front drawn and named."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.6))
    points = [(r["energy_j"], 100 * r["accuracy"]) for r in rows]
    front = pareto_front(points)
    ax.scatter([p[0] for p in points], [p[1] for p in points], s=25, color="#8a94a6", label="run")
    fx, fy = [points[i][0] for i in front], [points[i][1] for i in front]
    ax.step(fx, fy, where="post", color="#c0392b", linewidth=1.2)
    ax.scatter(fx, fy, s=45, color="#c0392b", label="Pareto front")
    for i in front:
        ax.annotate(rows[i]["label"], points[i], textcoords="offset points", xytext=(5, 3), fontsize=6)
    if max(p[0] for p in points) > 100 * max(1e-12, min(p[0] for p in points)):   # two decades or more
        from matplotlib.ticker import FuncFormatter, NullFormatter
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set(xlabel=f"training energy, J ({energy_kind})", ylabel="test accuracy (%)",
           title="Accuracy vs training energy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    return _save(fig, path)


def cumulative_energy(rows, path, energy_kind):
    """Cumulative training energy over epochs, one line per run."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 4))
    for r in rows:
        energy = np.cumsum([e["energy_j"] or 0.0 for e in r["epochs"]])
        ax.plot([e["epoch"] for e in r["epochs"]], energy, marker="o", markersize=3, label=r["label"])
    ax.set(xlabel="epoch", ylabel="cumulative training energy (J)", title=f"Training energy ({energy_kind})")
    ax.grid(alpha=0.3)
    _legend(ax, len(rows))
    return _save(fig, path)


def time_per_epoch(pairs, path):
    """Measured training time per epoch of each thinned run next to its unpruned twin (same config)."""
    if not pairs:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 4))
    for k, (pruned, dense) in enumerate(pairs):
        color = f"C{k % 10}"
        for r, style, tag in ((dense, "--", "unpruned"), (pruned, "-", "thinned")):
            ax.plot([e["epoch"] for e in r["epochs"]], [e["time_s"] for e in r["epochs"]], style, marker="o",
                    markersize=3, color=color, label=f"{dense['label']} ({tag})")
    ax.set(xlabel="epoch", ylabel="training time per epoch (s, measured)",
           title="Thinning during training: time per epoch vs the unpruned run")
    ax.grid(alpha=0.3)
    _legend(ax, 2 * len(pairs))
    return _save(fig, path)


def depth_width_heatmaps(cells, path):
    """Depth x width heatmaps of accuracy, effective MACs and training energy.

    Args:
        cells: {(depth, width): {"accuracy": %, "macs": M, "energy_j": J}} (means over the runs there).
    """
    depths = sorted({d for d, _ in cells})
    widths = sorted({w for _, w in cells})
    if len(depths) < 2 and len(widths) < 2:
        return None
    plt = _pyplot()
    metrics = (("accuracy", "test accuracy (%)", "viridis"), ("macs", "MACs per image (M)", "magma"),
               ("energy_j", "training energy (J)", "magma"))
    fig, axes = plt.subplots(1, 3, figsize=(13, 0.9 * len(depths) + 2.2))
    for ax, (key, title, cmap) in zip(axes, metrics):
        grid = np.full((len(depths), len(widths)), np.nan)
        for (d, w), values in cells.items():
            grid[depths.index(d), widths.index(w)] = values[key]
        im = ax.imshow(grid, cmap=cmap, aspect="auto")
        ax.set_xticks(range(len(widths)), labels=[f"{w:g}" for w in widths])
        ax.set_yticks(range(len(depths)), labels=[str(d) for d in depths])
        ax.set(xlabel="width multiplier", ylabel="depth", title=title)
        lo, hi = np.nanmin(grid), np.nanmax(grid)
        for i in range(len(depths)):
            for j in range(len(widths)):
                if np.isfinite(grid[i, j]):
                    bright = (grid[i, j] - lo) > 0.6 * (hi - lo)      # dark text on the light end of the map
                    ax.text(j, i, f"{grid[i, j]:.3g}", ha="center", va="center", fontsize=8,
                            color="black" if bright else "white")
        fig.colorbar(im, ax=ax, fraction=0.046)
    return _save(fig, path)


def efficiency_ranking(rows, path, energy_kind, top=20):
    """Horizontal bars: the efficiency score (accuracy % per joule of training), best first."""
    ranked = sorted(rows, key=lambda r: r["efficiency"], reverse=True)[:top]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 0.28 * len(ranked) + 1.4))
    y = np.arange(len(ranked))[::-1]
    ax.barh(y, [r["efficiency"] for r in ranked], color="#2e86de")
    ax.set_yticks(y, labels=[r["label"] for r in ranked], fontsize=7)
    ax.set(xlabel=f"accuracy (%) per joule of training ({energy_kind})",
           title=f"Efficiency score, top {len(ranked)} of {len(rows)}")
    ax.grid(alpha=0.3, axis="x")
    return _save(fig, path)
