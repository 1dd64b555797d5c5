"""The comparison table as Markdown and CSV: one row per variant, units in the column names."""
import csv

from tinyeff import fsio

COLUMNS = (
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
    ("energy_per_image_j", "energy/img (µJ)", "{:.1f}", 1e6),
    ("energy_source", "energy source", "{}"),
    ("efficiency_acc_per_j", "acc per J", "{:,.0f}"),
    ("train_time_s", "train time (s)", "{:.1f}"),
    ("train_energy_j", "train energy (J)", "{:.2f}"),
)
CSV_FIELDS = ("variant", "description", "accuracy", "accuracy_delta_points", "latency_ms", "throughput_ips",
              "speedup_throughput", "speedup_latency", "macs_dense", "macs_effective", "flop_ratio", "params",
              "params_nonzero", "model_file_bytes", "size_ratio", "energy_per_image_j", "energy_source",
              "energy_estimated", "efficiency_acc_per_j", "train_time_s", "train_energy_j")


def _cell(row, spec):
    key, _, fmt = spec[:3]
    value = row.get(key)
    if value is None:
        return "–"
    if key == "energy_source" and row.get("energy_estimated"):
        return "estimated (model)"
    scale = spec[3] if len(spec) > 3 else None
    return fmt.format(value * scale if scale else value)


def table_rows(rows):
    """Header and formatted cells, shared by Markdown and HTML."""
    return [spec[1] for spec in COLUMNS], [[_cell(r, spec) for spec in COLUMNS] for r in rows]


def markdown(results):
    header, cells = table_rows(results["rows"])
    lines = [f"# tinyeff compare: {results['model']} on {results['data']}", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(c) + " |" for c in cells]
    lines += ["", results["energy_note"], "",
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
