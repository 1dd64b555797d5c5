"""The sweep report: plots and a self-contained ``report.html``, built from the results store.

Same conventions as ``compare``'s report (``tinyeff.report.html``): inline CSS, every plot a
base64 PNG, energy labelled measured or ESTIMATED, written through a temporary file and a rename.
It holds: the efficiency ranking table (accuracy per joule of training), the feed-forward vs ResNet
vs ResNet + pruning table, the thinning-during-training table (each channel-pruned run against the
unpruned run of the same config: measured time per epoch after the first pruning event and
cumulative training energy), and the plots of ``plots.py``.
"""
import base64
import html
import os

from tinyeff import fsio
from tinyeff.report.html import STYLE
from tinyeff.sweep import grid, plots
from tinyeff.sweep.store import Store


def rows(runs):
    """Report rows (see ``plots``) for finished runs from ``Store.runs``."""
    varying = grid.varying_axes([r["config"] for r in runs])
    out = []
    for r in runs:
        energy = r["energy_j"] or 0.0
        accuracy = r["final_accuracy"]
        out.append({"id": r["id"], "label": grid.label(r["config"], varying), "config": r["config"],
                    "accuracy": accuracy, "energy_j": energy, "energy_source": r["energy_source"],
                    "efficiency": 100 * accuracy / energy if energy > 0 else 0.0, "train_time_s": r["train_time_s"],
                    "macs_dense": r["macs_dense"], "macs_effective": r["macs_effective"], "params": r["params"],
                    "params_final": r["params_final"], "peak_memory_bytes": r["peak_memory_bytes"],
                    "pruning_note": r["pruning_note"], "host": r["host"], "epochs": r["epochs"]})
    return out


def family(config):
    """The comparison family of a run: "MLP", "ResNet", "ResNet + pruning", or the model's name."""
    name = {"mlp": "MLP", "resnet": "ResNet"}.get(config["model"], config["model"])
    return name + (" + pruning" if config["prune"] != "none" else "")


def thinning_pairs(report_rows):
    """(thinned run, unpruned twin) pairs: channel-pruned runs whose same config without pruning ran."""
    by_id = {r["id"]: r for r in report_rows}
    pairs = []
    for r in report_rows:
        if r["config"]["prune"] != "channel":
            continue
        twin = grid.config_id(grid.resolve(dict(r["config"], prune="none")))
        if twin in by_id:
            pairs.append((r, by_id[twin]))
    return pairs


def thinning_summary(pruned, dense):
    """Mean measured time per epoch from the first pruning event on, both runs, and the energy ratio."""
    events = [e["epoch"] for e in (pruned.get("events") or [])]
    first = (min(events) + 1) if events else 2          # epochs are 1-based in the store
    after = [e for e in pruned["epochs"] if e["epoch"] >= first]
    twin = [e for e in dense["epochs"] if e["epoch"] >= first]
    if not after or not twin:
        return None
    t_pruned = sum(e["time_s"] for e in after) / len(after)
    t_dense = sum(e["time_s"] for e in twin) / len(twin)
    return {"from_epoch": first, "time_pruned_s": t_pruned, "time_dense_s": t_dense,
            "time_ratio": t_pruned / t_dense, "energy_pruned_j": pruned["energy_j"],
            "energy_dense_j": dense["energy_j"], "energy_ratio": pruned["energy_j"] / max(dense["energy_j"], 1e-12),
            "accuracy_pruned": pruned["accuracy"], "accuracy_dense": dense["accuracy"],
            "params_final": pruned["params_final"], "params": dense["params"]}


def depth_width_cells(report_rows):
    """Means per (depth, width) over unpruned ResNet runs with shortcuts on."""
    groups = {}
    for r in report_rows:
        c = r["config"]
        if c["model"] == "resnet" and c["prune"] == "none" and c["shortcut"]:
            groups.setdefault((c["depth"], c["width"]), []).append(r)
    return {k: {"accuracy": _mean(100 * r["accuracy"] for r in v), "macs": _mean(r["macs_effective"] / 1e6 for r in v),
                "energy_j": _mean(r["energy_j"] for r in v)} for k, v in groups.items()}


def _mean(values):
    values = list(values)
    return sum(values) / len(values)


def load(out_dir, ids=None):
    """(report rows of the finished runs, counts by status, store rows of the other runs) from ``out_dir``."""
    with Store(out_dir) as store:
        runs = store.runs(ids)
        counts = store.counts(ids)
        others = [r for r in store.runs(ids, status=None) if r["status"] != "done"]
    report_rows = rows(runs)
    for r, run in zip(report_rows, runs):
        r["events"] = (run["result"] or {}).get("pruning_events", [])
    return report_rows, counts, others


def write_report(out_dir, ids=None, notes=(), preset=None):
    """Write plots to ``out_dir/plots`` and ``out_dir/report.html``; return the HTML path."""
    report_rows, counts, others = load(out_dir, ids)
    estimated = any(r["energy_source"] in (None, "model") for r in report_rows)
    kind = "ESTIMATED by the energy model" if estimated else "measured"
    figures = {}
    if report_rows:
        pdir = os.path.join(out_dir, "plots")
        pairs = thinning_pairs(report_rows)
        figures = {
            "accuracy_over_epochs": plots.accuracy_over_epochs(report_rows, os.path.join(pdir, "accuracy_epochs.png")),
            "accuracy_vs_energy": plots.accuracy_vs_energy(report_rows, os.path.join(pdir, "accuracy_energy.png"), kind),
            "cumulative_energy": plots.cumulative_energy(report_rows, os.path.join(pdir, "cumulative_energy.png"), kind),
            "depth_width": plots.depth_width_heatmaps(depth_width_cells(report_rows),
                                                      os.path.join(pdir, "depth_width.png")),
            "efficiency_ranking": plots.efficiency_ranking(report_rows, os.path.join(pdir, "efficiency.png"), kind),
            "time_per_epoch": plots.time_per_epoch(pairs, os.path.join(pdir, "time_per_epoch.png")),
        }
    page = render(report_rows, counts, others, figures, kind, notes, preset, out_dir)
    path = os.path.join(out_dir, "report.html")
    return fsio.write_text(path, page)


WIDE = ("accuracy_over_epochs", "cumulative_energy", "time_per_epoch", "depth_width")   # legends beside
CAPTIONS = {
    "accuracy_over_epochs": "Test accuracy after every epoch, one line per run.",
    "accuracy_vs_energy": "Final accuracy against cumulative training energy; red: the Pareto front "
                          "(no run is both cheaper and more accurate).",
    "cumulative_energy": "Cumulative training energy over epochs.",
    "depth_width": "Depth x width (unpruned ResNets, shortcuts on; means over the other axes): accuracy, MACs "
                   "per image, training energy.",
    "efficiency_ranking": "Efficiency score: final accuracy (%) per joule of training energy.",
    "time_per_epoch": "Measured training time per epoch: each channel-pruned run (thinned at every pruning "
                      "event) against the same config unpruned.",
}


def render(report_rows, counts, others, figures, kind, notes, preset, out_dir):
    """The report page as one HTML string."""
    esc = html.escape
    title = f"tinyeff sweep{': preset ' + preset if preset else ''}"
    status = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    body = [f"<h1>{esc(title)}</h1>", f"<p class='sub'>{len(report_rows)} finished runs ({esc(status)})</p>",
            f"<div class='note'>Energy is {esc(kind)}; the efficiency score is accuracy (%) per joule of "
            "training. Times are measured on this machine.</div>"]
    if notes:
        body.append("<div class='note'>Cuts for a quick run: " + "; ".join(esc(n) for n in notes) + "</div>")
    body += _table("Efficiency ranking", *_ranking(report_rows))
    body += _table("Feed-forward vs ResNet vs ResNet + pruning (best accuracy per family)", *_families(report_rows))
    body += _table("Thinning during training vs the unpruned run", *_thinning(report_rows))
    varying = grid.varying_axes([r["config"] for r in others])
    body += _table("Runs without a result", ["run", "status", "attempts", "why"],
                   [[grid.label(r["config"], varying), r["status"], r["attempts"], r["error"] or "-"] for r in others],
                   "diverged runs are results of their config and are not retried; failed and pending runs are "
                   "retried by the next sweep" if others else "every run of this sweep finished")
    body.append("<h2>Plots</h2><div class='grid'>")
    for key, path in figures.items():
        if path:
            with open(path, "rb") as f:
                data = base64.b64encode(f.read()).decode("ascii")
            wide = " style='grid-column: 1 / -1'" if key in WIDE else ""
            body.append(f"<figure{wide}><img alt='{esc(key)}' src='data:image/png;base64,{data}'>"
                        f"<figcaption>{esc(CAPTIONS.get(key, key))}</figcaption></figure>")
    body.append("</div><h2>Store</h2><p class='sub'>Every run and epoch: <code>sweep.db</code> (SQLite, tables "
                "<code>runs</code> and <code>epochs</code>) and <code>results.csv</code> in "
                f"{esc(os.path.abspath(out_dir))}.</p>")
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{esc(title)}</title><style>{STYLE}</style></head><body>" + "\n".join(body) + "</body></html>\n")


def _table(title, header, cells, note=""):
    esc = html.escape
    if not cells:
        return [f"<h2>{esc(title)}</h2><p class='sub'>{esc(note or 'nothing to show in this sweep')}</p>"]
    out = [f"<h2>{esc(title)}</h2><div class='scroll'><table><thead><tr>"
           + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr></thead><tbody>"]
    out += ["<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in row) + "</tr>" for row in cells]
    out.append("</tbody></table></div>" + (f"<p class='sub'>{esc(note)}</p>" if note else ""))
    return out


def _ranking(report_rows):
    header = ["run", "test acc (%)", "train energy (J)", "acc % per J", "train time (s)", "MACs dense (M)",
              "MACs effective (M)", "params", "params at end", "peak RSS (MiB)", "pruning", "host"]
    ranked = sorted(report_rows, key=lambda r: r["efficiency"], reverse=True)
    cells = [[r["label"], f"{100 * r['accuracy']:.2f}", f"{r['energy_j']:.3g}", f"{r['efficiency']:,.1f}",
              f"{r['train_time_s']:.1f}", f"{r['macs_dense'] / 1e6:.2f}", f"{r['macs_effective'] / 1e6:.2f}",
              f"{r['params']:,}", f"{r['params_final']:,}", f"{(r['peak_memory_bytes'] or 0) / 2 ** 20:.0f}",
              r["pruning_note"] or "-", r["host"]] for r in ranked]
    return header, cells, "MACs are per image, forward pass; effective = what the final model runs."


def _families(report_rows):
    best = {}
    for r in report_rows:
        f = family(r["config"])
        if f not in best or r["accuracy"] > best[f]["accuracy"]:
            best[f] = r
    header = ["family", "best run", "test acc (%)", "MACs effective (M)", "FLOPs (M)", "params at end",
              "cumulative train energy (J)", "train time (s)"]
    cells = [[f, r["label"], f"{100 * r['accuracy']:.2f}", f"{r['macs_effective'] / 1e6:.2f}",
              f"{2 * r['macs_effective'] / 1e6:.2f}", f"{r['params_final']:,}", f"{r['energy_j']:.3g}",
              f"{r['train_time_s']:.1f}"] for f, r in sorted(best.items())]
    return header, cells, "FLOPs = 2 x MACs of the convolutions and linear layers, per image."


def _thinning(report_rows):
    header = ["config (the unpruned run)", "from epoch", "time/epoch thinned (s)", "time/epoch unpruned (s)", "time ratio",
              "train energy thinned (J)", "unpruned (J)", "energy ratio", "acc thinned (%)", "acc unpruned (%)",
              "params end / start"]
    cells = []
    for pruned, dense in thinning_pairs(report_rows):
        s = thinning_summary(pruned, dense)
        if s:
            cells.append([dense["label"], s["from_epoch"], f"{s['time_pruned_s']:.3f}", f"{s['time_dense_s']:.3f}",
                          f"{s['time_ratio']:.2f}", f"{s['energy_pruned_j']:.3g}", f"{s['energy_dense_j']:.3g}",
                          f"{s['energy_ratio']:.2f}", f"{100 * s['accuracy_pruned']:.2f}",
                          f"{100 * s['accuracy_dense']:.2f}", f"{s['params_final']:,} / {s['params']:,}"])
    return header, cells, ("Mean measured training time per epoch from the epoch after the first pruning event; "
                           "runs side by side on a shared machine, so treat single ratios as noisy.")


def thinning_results(out_dir, ids=None):
    """The thinning summaries (``thinning_summary`` dicts plus the run label), for scripts and tests."""
    report_rows, _, _ = load(out_dir, ids)
    out = []
    for pruned, dense in thinning_pairs(report_rows):
        s = thinning_summary(pruned, dense)
        if s:
            out.append(dict(s, run=dense["label"]))
    return out
