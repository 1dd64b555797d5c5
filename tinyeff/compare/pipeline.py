"""``run_compare``: train (or load) a baseline, derive each variant, measure all of them side by side,
and write results.json, results.csv, results.md, PNG plots and a self-contained report.html.

Every speed figure is measured on tinyeff's own kernels in this run (never derived from FLOPs);
every energy figure carries its source, and on a machine without a live counter it is labelled an
estimate of the energy model.
"""
import logging
import os
import platform
import time


from tinyeff import data, flops, fsio, train
from tinyeff.compare import compressed, trained  # noqa: F401  (register the variant builders)
from tinyeff.compare import variants as variant_table
from tinyeff.compare.measure import measure_energy, measure_speed
from tinyeff.compare.layers import layer_breakdown
from tinyeff.compare.sweep import sparsity_sweep
from tinyeff.energy.profile import peak_rss_bytes
from tinyeff.report import html, plots, tables

DEFAULT_VARIANTS = ("baseline", "pruned", "quantized", "pruned+quantized")


def available_variants():
    return list(variant_table.BUILDERS)


def run_compare(model_name="seed-cnn", data_name="fashion-mnist-sample", variants=DEFAULT_VARIANTS,
                out_dir="tinyeff-compare", epochs=5, finetune_epochs=2, sparsity=0.9, batch_size=64,
                lr=1e-3, seed=0, root=None, baseline_path=None, progress=True, log=None, min_time_s=0.5,
                data_options=None, model_options=None, preprocess="standardize", limit=None):
    """Run the whole comparison; return the results dict also written to ``out_dir/results.json``.

    ``model_options`` (width, shortcut, init: see ``models.knobs.build``) and ``preprocess`` shape the
    trained models; ``limit`` trains on the first N training images only.
    """
    unknown = [v for v in variants if v not in variant_table.BUILDERS]
    if unknown:
        raise ValueError(f"compare: unknown variant {unknown[0]!r}; available: {', '.join(available_variants())}")
    variants = ["baseline"] + [v for v in variants if v != "baseline"]
    log = log or logging.getLogger("tinyeff.compare").info
    os.makedirs(out_dir, exist_ok=True)
    t_start = time.perf_counter()
    train_split, test_split = data.require_images(data_name, *data.load(data_name, root=root, **(data_options or {})))
    if limit:
        train_split = train_split.head(limit)
    ctx = variant_table.CompareContext(model_name, data_name, train_split, test_split, out_dir, epochs,
                                       finetune_epochs, sparsity, batch_size, lr, seed, progress, baseline_path,
                                       variants=tuple(variants), model_options=dict(model_options or {}),
                                       preprocess=preprocess)
    for name in variants:
        ctx.built[name] = variant_table.BUILDERS[name](ctx)
        log(f"[{name}] {ctx.built[name].description}")
    ctx.built.pop("_masked", None)
    log("measuring every variant side by side (accuracy, latency, throughput, energy, size)")
    speed = measure_speed({name: ctx.built[name].model for name in variants}, test_split.images,
                          _preprocess_of, min_time_s=min_time_s / 10)
    rows = [_measure_variant(ctx, ctx.built[name], speed[name], min_time_s) for name in variants]
    _add_ratios(rows)
    results = {"model": model_name, "data": data_name, "rows": rows,
               "config": {"variants": variants, "epochs": epochs, "finetune_epochs": finetune_epochs,
                          "sparsity": sparsity, "batch_size": batch_size, "lr": lr, "seed": seed,
                          "model_options": dict(model_options or {}), "preprocess": preprocess, "limit": limit,
                          "test_images": int(len(test_split.labels)), "train_images": int(len(train_split.labels))},
               "versions": train.versions(), "machine": _machine(),
               "energy_note": _energy_note(rows)}
    results["plots"] = _plots(ctx, rows, out_dir)
    results["wall_time_s"] = time.perf_counter() - t_start
    results["peak_rss_bytes"] = peak_rss_bytes()
    _write_outputs(results, out_dir)
    return results


def _preprocess_of(model):
    return train.make_preprocess(getattr(model, "preprocess", None))


def _measure_variant(ctx, v, speed, min_time_s):
    model = v.model
    preprocess = _preprocess_of(model)
    accuracy = train.evaluate(model, ctx.test_split, preprocess=preprocess)
    speed = dict(speed, **measure_energy(model, ctx.test_split.images, preprocess, min_time_s=min_time_s))
    counts = flops.count(model, (1,) + ctx.test_split.images.shape[1:]).totals
    path = os.path.join(ctx.out_dir, "models", f"{v.name.replace('+', '_')}.npz")
    file_bytes = v.write(path)
    row = {"variant": v.name, "description": v.description, "accuracy": accuracy["accuracy"],
           "confusion": accuracy["confusion"],
           "latency_ms": speed["latency_ms"], "throughput_ips": speed["throughput_ips"],
           "macs_dense": int(counts["macs"]), "macs_effective": int(counts["macs_effective"]),
           "params": int(counts["params"]), "params_nonzero": int(counts["params_nonzero"]),
           "model_file_bytes": int(file_bytes), "model_file": os.path.relpath(path, ctx.out_dir),
           "energy_per_image_j": speed["energy_per_image_j"], "energy_source": speed["energy_source"],
           "energy_estimated": speed["energy_estimated"], "energy_label": speed["energy_label"],
           "train_time_s": v.train_time_s, "train_energy_j": v.train_energy_j,
           "train_epochs": v.epochs, "extra_epochs": v.extra_epochs, "loss_name": v.loss_name,
           "param_bytes": int(counts["param_bytes"]), "activation_bytes": int(counts["activation_bytes"]),
           "history": v.history, "notes": v.notes}
    row["efficiency_acc_per_j"] = row["accuracy"] / row["energy_per_image_j"] if row["energy_per_image_j"] else None
    return row


def _add_ratios(rows):
    base = rows[0]
    for row in rows:
        row["speedup_throughput"] = row["throughput_ips"] / base["throughput_ips"]
        row["speedup_latency"] = base["latency_ms"] / row["latency_ms"]
        row["size_ratio"] = base["model_file_bytes"] / row["model_file_bytes"]
        row["accuracy_delta_points"] = 100 * (row["accuracy"] - base["accuracy"])
        row["flop_ratio"] = row["macs_dense"] / max(row["macs_effective"], 1)


def _energy_note(rows):
    if all(r["energy_estimated"] for r in rows):
        return ("Energy figures are ESTIMATES of tinyeff's per-operation energy model (no live energy "
                "counter on this machine; run `tinyeff energy probe` for the reasons).")
    return "Energy figures are measured with: " + ", ".join(sorted({r["energy_source"] for r in rows}))


def _machine():
    from tinyeff.kernels import cpu
    threads = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")}
    return {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count(),
            "cpu_features": [k for k, v in cpu.features().items() if v],
            "thread_settings": {k: v for k, v in threads.items() if v is not None} or "library defaults"}


def _plots(ctx, rows, out_dir):
    pdir = os.path.join(out_dir, "plots")
    estimated = all(r["energy_estimated"] for r in rows)
    colors = plots.variant_colors([r["variant"] for r in rows])       # one colour per variant, every panel
    out = {"accuracy_vs_energy": plots.accuracy_vs_energy(rows, os.path.join(pdir, "accuracy_vs_energy.png"),
                                                          estimated, colors)}
    histories = {r["variant"]: r["history"] for r in rows if r["history"]}
    if histories:
        out["training_curves"] = plots.training_curves(histories, os.path.join(pdir, "training_curves.png"), colors,
                                                       {r["variant"]: r["loss_name"] for r in rows})
        out["training_energy"] = plots.cumulative_energy(histories, os.path.join(pdir, "training_energy.png"),
                                                         estimated, colors)
    classes = ctx.test_split.classes
    best = max(rows[1:], key=lambda r: r["efficiency_acc_per_j"] or 0) if len(rows) > 1 else rows[0]
    out["confusion_baseline"] = plots.confusion_matrix(rows[0]["confusion"], classes,
                                                       os.path.join(pdir, "confusion_baseline.png"),
                                                       f"baseline ({100 * rows[0]['accuracy']:.1f}%)")
    out["confusion_best"] = plots.confusion_matrix(best["confusion"], classes, os.path.join(pdir, "confusion_best.png"),
                                                   f"{best['variant']} ({100 * best['accuracy']:.1f}%)")
    compressed = ctx.built[best["variant"]].model
    out.update(layer_breakdown(ctx.built["baseline"].model, compressed, best["variant"],
                               ctx.test_split.images.shape[1:], pdir, colors))
    if "pruned" in ctx.built:
        points = sparsity_sweep(ctx.built["baseline"].model, ctx.test_split.images.shape[1:])
        out["sparsity_speedup"] = plots.sparsity_speedup(points, os.path.join(pdir, "sparsity_speedup.png"))
    return {k: os.path.relpath(v, out_dir) for k, v in out.items()}


def _write_outputs(results, out_dir):
    train.write_json(os.path.join(out_dir, "results.json"), results)
    tables.write_csv(results["rows"], os.path.join(out_dir, "results.csv"))
    fsio.write_text(os.path.join(out_dir, "results.md"), tables.markdown(results))
    html.write_report(results, out_dir)
