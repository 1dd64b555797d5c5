"""A self-contained HTML report: inline CSS, every plot embedded as a base64 PNG, no external resources,
so the file can be mailed, archived or opened offline and still shows everything."""
import base64
import html
import json
import os

from tinyeff import fsio
from tinyeff.report.tables import TABLES, fine_tuning_caveat, table_rows

STYLE = """
body { font-family: system-ui, -apple-system, Segoe UI, Roboto, sans-serif; margin: 2rem auto; max-width: 1200px;
       color: #1d2330; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; } h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #dde; }
.sub { color: #5a6275; margin-top: 0; }
.note { background: #fff6df; border-left: 4px solid #e0a800; padding: 0.6rem 0.9rem; margin: 1rem 0; }
table { border-collapse: collapse; font-size: 0.85rem; width: 100%; table-layout: auto; }
th, td { border: 1px solid #d5d9e2; padding: 0.35rem 0.5rem; text-align: right; }
td { white-space: nowrap; } th { vertical-align: bottom; }
h3 { font-size: 1rem; margin: 1.2rem 0 0.4rem; }
th { background: #eef1f7; } td:first-child, th:first-child { text-align: left; font-weight: 600; }
tr.best td { background: #e9f7ec; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(480px, 1fr)); gap: 1rem; }
figure { margin: 0; } figure.wide { grid-column: 1 / -1; } figure img { max-width: 100%; border: 1px solid #e3e6ee; }
figcaption { font-size: 0.85rem; color: #5a6275; }
pre { background: #f5f6fa; padding: 0.8rem; overflow-x: auto; font-size: 0.8rem; }
"""

WIDE_PLOTS = ("training_curves",)     # two panels with long legends: the full width of the page
CAPTIONS = {
    "accuracy_vs_energy": "Accuracy against energy per image, one point per variant.",
    "training_curves": "Training loss and test accuracy per epoch for every variant that trained.",
    "training_energy": "Cumulative training energy per epoch.",
    "layers_time_ms": "Per-layer forward time (measured), baseline vs the most efficient variant.",
    "layers_macs": "Per-layer MACs actually run (effective), baseline vs the most efficient variant.",
    "layers_energy_j": "Per-layer energy (energy model), baseline vs the most efficient variant.",
    "confusion_baseline": "Confusion matrix of the baseline.",
    "confusion_best": "Confusion matrix of the most efficient variant.",
    "sparsity_speedup": "Sparse-kernel speedup over the dense path per conv layer, measured, vs ideal 1/(1-s).",
}


def _image(path):
    with open(path, "rb") as f:
        return "data:image/png;base64," + base64.b64encode(f.read()).decode("ascii")


def render(results, out_dir):
    """The report as one HTML string; plot paths in ``results['plots']`` are relative to ``out_dir``."""
    esc = html.escape
    best = max(range(len(results["rows"])), key=lambda i: results["rows"][i].get("efficiency_acc_per_j") or 0)
    rss = results.get("peak_rss_bytes")
    body = [f"<h1>tinyeff compare: {esc(results['model'])} on {esc(results['data'])}</h1>",
            f"<p class='sub'>{len(results['rows'])} variants, {results['config']['test_images']:,} test images, "
            f"wall time {results.get('wall_time_s', 0):.0f} s"
            + (f", peak memory (RSS) of the whole run {rss / 2**20:,.0f} MiB" if rss else "") + "</p>",
            f"<div class='note'>{esc(results['energy_note'])}</div>", "<h2>Results</h2>"]
    for title, columns in TABLES:
        header, cells = table_rows(results["rows"], columns)
        body.append(f"<h3>{esc(title)}</h3><table><thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in header)
                    + "</tr></thead><tbody>")
        for i, row in enumerate(cells):
            body.append(f"<tr{' class=best' if i == best else ''}>" + "".join(f"<td>{esc(c)}</td>" for c in row)
                        + "</tr>")
        body.append("</tbody></table>")
    caveat = fine_tuning_caveat(results["rows"])
    if caveat:
        body.append(f"<div class='note'>{esc(caveat)}</div>")
    body.append("<p class='sub'>Highlighted: the best accuracy per joule. Speedups are measured on tinyeff's own "
                "kernels, side by side in this run. Memory: weight bytes as held for inference and the "
                "activations of one image (from the FLOP counter).</p><h2>Variants</h2><ul>")
    for row in results["rows"]:
        notes = "".join(f"; {esc(n)}" for n in row.get("notes", []))
        body.append(f"<li><b>{esc(row['variant'])}</b>: {esc(row['description'])}{notes}</li>")
    body.append("</ul><h2>Plots</h2><div class='grid'>")
    for key, rel in results.get("plots", {}).items():
        body.append(f"<figure{' class=wide' if key in WIDE_PLOTS else ''}><img alt='{esc(key)}' src='{_image(os.path.join(out_dir, rel))}'>"
                    f"<figcaption>{esc(CAPTIONS.get(key, key))}</figcaption></figure>")
    body.append("</div><h2>Reproducibility</h2><pre>" + esc(json.dumps(
        {"config": results["config"], "versions": results["versions"], "machine": results["machine"]}, indent=2))
        + "</pre>")
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>tinyeff compare: {esc(results['model'])}</title><style>{STYLE}</style></head><body>"
            + "\n".join(body) + "</body></html>\n")


def write_report(results, out_dir):
    """Write ``out_dir/report.html`` (temp file, then rename); return its path."""
    path = os.path.join(out_dir, "report.html")
    return fsio.write_text(path, render(results, out_dir))
