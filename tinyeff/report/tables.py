"""The comparison tables as Markdown and CSV: one row per variant, units in the column names.

The columns are split into two tables (accuracy and speed; energy, memory and training) so each
fits a screen or a printed page without a horizontal scroll. Both start with the variant.
"""
import csv

from tinyeff import fsio

ACCURACY_SPEED = (
    ("variant", "variant", "{}"),
    ("accuracy", "test acc (%)", "{:.2f}", 100),
    ("accuracy_delta_points", "Δ acc (pts)", "{:+.2f}"),
    ("latency_ms", "latency b=1 (ms)", "{:.2f}"),
    ("throughput_ips", "throughput b=256 (img/s)", "{:,.0f}"),
    ("speedup_throughput", "speedup (x, measured)", "{:.2f}"),
    ("macs_dense", "MACs dense (M)", "{:.2f}", 1e-6),
    ("macs_effective", "MACs effective (M)", "{:.2f}", 1e-6),
    ("params_nonzero", "params nonzero", "{:,}"),
    ("model_file_bytes", "file (KiB)", "{:,.1f}", 1 / 1024),
)
ENERGY_MEMORY_TRAINING = (
    ("variant", "variant", "{}"),
    ("energy_per_image_j", "energy/img (µJ)", "{:.1f}", 1e6),
    ("energy_source", "energy source", "{}"),
    ("efficiency_acc_per_j", "acc per J", "{:,.0f}"),
    ("param_bytes", "weights in memory (KiB)", "{:,.1f}", 1 / 1024),
    ("activation_bytes", "activations b=1 (KiB)", "{:,.1f}", 1 / 1024),
    ("train_epochs", "training epochs", "{}"),
    ("train_time_s", "train time (s)", "{:.1f}"),
    ("train_energy_j", "train energy (J)", "{:.2f}"),
)
TABLES = (("Accuracy and speed", ACCURACY_SPEED), ("Energy, memory and training", ENERGY_MEMORY_TRAINING))
CSV_FIELDS = ("variant", "description", "accuracy", "accuracy_delta_points", "latency_ms", "throughput_ips",
              "speedup_throughput", "speedup_latency", "macs_dense", "macs_effective", "flop_ratio", "params",
              "params_nonzero", "model_file_bytes", "size_ratio", "energy_per_image_j", "energy_source",
              "energy_estimated", "efficiency_acc_per_j", "param_bytes", "activation_bytes", "train_epochs",
              "extra_epochs", "train_time_s", "train_energy_j")


def _cell(row, spec):
    key, _, fmt = spec[:3]
    value = row.get(key)
    if value is None:
        return "–"
    if key == "energy_source" and row.get("energy_estimated"):
        return "estimated (model)"
    if key == "train_epochs" and row.get("extra_epochs"):
        return f"{value} ({value - row['extra_epochs']} + {row['extra_epochs']} fine-tuning)"
    scale = spec[3] if len(spec) > 3 else None
    return fmt.format(value * scale if scale else value)


def table_rows(rows, columns=ACCURACY_SPEED):
    """Header and formatted cells of one table, shared by Markdown and HTML."""
    return [spec[1] for spec in columns], [[_cell(r, spec) for spec in columns] for r in rows]


def fine_tuning_caveat(rows):
    """The sentence a reader needs when some variants trained longer than the baseline, else None."""
    longer = [r["variant"] for r in rows if r.get("extra_epochs")]
    if not longer:
        return None
    extra = max(r["extra_epochs"] for r in rows if r.get("extra_epochs"))
    return (f"Caveat: {', '.join(longer)} trained {extra} epoch(s) of fine-tuning beyond the baseline "
            "(see 'training epochs'); the baseline did not get those epochs, so part of their accuracy "
            "difference can come from the extra training rather than from the compression.")


def markdown(results):
    lines = [f"# tinyeff compare: {results['model']} on {results['data']}", ""]
    for title, columns in TABLES:
        header, cells = table_rows(results["rows"], columns)
        lines += [f"## {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(c) + " |" for c in cells] + [""]
    caveat = fine_tuning_caveat(results["rows"])
    lines += [results["energy_note"], ""] + ([caveat, ""] if caveat else []) + [
              "Speedups are measured on tinyeff's own kernels in this run, side by side; MAC counts are "
              "from the shapes actually run (effective = nonzero weights when a sparse kernel ran).", ""]
    for row in results["rows"]:
        lines.append(f"- **{row['variant']}**: {row['description']}" + "".join(f"; {n}" for n in row["notes"]))
    return "\n".join(lines) + "\n"


def write_csv(rows, path):
    def write(f):
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    fsio.write_with(path, write, binary=False)
