"""Turn a pytest-benchmark JSON file into one table per group: GOP/s, speedups, percent of peak.

Every benchmark in bench/ stores ``ops`` (operations per call: 2*M*N*K for a GEMM) and, where it
makes sense, ``peak_gops`` (the machine's peak for that op type and thread count) and ``tier`` in
``extra_info``. From those and the median time this script derives:
    GOP/s      = ops / median time / 1e9 (GFLOP/s for float rows)
    vs ref     = ref tier's median / this row's median (same group, same shape)
    vs f32     = NumPy float32's median / this row's median
    % of peak  = GOP/s / peak_gops
Medians, not minimums: on a shared machine the best run flatters; the median is what a user sees.

Usage: python bench/report.py out.json [--json summary.json]
"""
import argparse
import json
import sys
from collections import defaultdict


def summarize(data):
    """Rows (dicts) with the derived figures, grouped by benchmark group, in file order."""
    groups = defaultdict(list)
    for bench in data["benchmarks"]:
        info = bench.get("extra_info", {})
        median_s = bench["stats"]["median"]
        ops = info.get("ops")
        row = {"group": bench.get("group") or bench["name"], "name": bench["name"],
               "tier": info.get("tier", "?"), "threads": info.get("threads"),
               "median_s": median_s, "min_s": bench["stats"]["min"],
               "gops": ops / median_s / 1e9 if ops and median_s > 0 else None,
               "peak_gops": info.get("peak_gops"), "code_path": info.get("code_path")}
        row["pct_peak"] = (100.0 * row["gops"] / row["peak_gops"]
                           if row["gops"] and row["peak_gops"] else None)
        groups[row["group"]].append(row)
    for rows in groups.values():
        ref = [r["median_s"] for r in rows if r["tier"] == "ref"]
        f32 = [r["median_s"] for r in rows if r["tier"] == "numpy-f32"]
        for r in rows:
            r["vs_ref"] = ref[0] / r["median_s"] if ref else None
            r["vs_f32"] = f32[0] / r["median_s"] if f32 else None
    return groups


def _fmt(value, spec):
    return format(value, spec) if value is not None else "-"


def render(groups, machine):
    lines = []
    if machine:
        lines.append(f"machine: {machine.get('cpu', {}).get('brand_raw', '?')}, "
                     f"{machine.get('cpu', {}).get('count', '?')} logical CPUs")
    for group, rows in groups.items():
        lines.append(f"\n{group}")
        lines.append(f"  {'tier':<14}{'thr':>4}{'median ms':>11}{'GOP/s':>9}{'vs ref':>8}"
                     f"{'vs f32':>8}{'% peak':>8}")
        for r in sorted(rows, key=lambda r: r["median_s"], reverse=True):
            lines.append(f"  {r['tier']:<14}{_fmt(r['threads'], 'd'):>4}{r['median_s'] * 1e3:>11.3f}"
                         f"{_fmt(r['gops'], '.1f'):>9}{_fmt(r['vs_ref'], '.1f'):>8}"
                         f"{_fmt(r['vs_f32'], '.2f'):>8}{_fmt(r['pct_peak'], '.1f'):>8}")
    paths = {r["code_path"] for rows in groups.values() for r in rows if r.get("code_path")}
    for path in sorted(paths):
        lines.append(f"\nC code path: {path}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json_file", help="output of pytest --benchmark-json")
    parser.add_argument("--json", dest="out", help="also write the derived rows here")
    args = parser.parse_args(argv)
    with open(args.json_file) as f:
        data = json.load(f)
    groups = summarize(data)
    print(render(groups, data.get("machine_info")))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(groups, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
