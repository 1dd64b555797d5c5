"""The sweep driver: what to run, launching it on a pool, and writing every result to the store.

The one idea: the driver is the only process that touches the store, and it launches no more runs
than the pool has room for, so a budget can stop the launches, the forecast can be printed as
epochs come in, and a killed sweep leaves only its in-flight runs marked ``running`` (the next
sweep retries them). Finished runs are skipped, so re-running the same command executes nothing new.

``run_sweep`` takes any pool with the interface described in ``runner.py``: the local process pool
or the Dask cluster pool.
"""
import logging

from tinyeff.sweep import grid
from tinyeff.sweep.budget import Forecast
from tinyeff.sweep.store import FINISHED, Store

log = logging.getLogger("tinyeff.sweep")


def plan(store, configs):
    """Add every config to ``store``; return (ids in grid order, ids still to run, counts by status)."""
    ids = []
    for config in configs:
        run_id = grid.config_id(config)
        store.add(run_id, config)
        ids.append(run_id)
    todo = [i for i in ids if store.status(i) not in FINISHED]
    return ids, todo, store.counts(ids)


def run_sweep(configs, out_dir, pool, budget=None, poll_s=0.5):
    """Run every config not yet done in ``out_dir``'s store on ``pool``; return a summary dict.

    Args:
        configs: resolved configs (``grid.expand`` / ``grid.expand_blocks``).
        pool: ``runner.LocalPool`` or ``cluster.DaskPool``.
        budget: optional ``budget.Budget``; runs it refuses stay pending.
    """
    with Store(out_dir) as store:
        ids, todo, counts = plan(store, configs)
        by_id = {grid.config_id(c): c for c in configs}
        log.info(f"sweep: {len(ids)} runs, {counts.get('done', 0)} already done, {len(todo)} to run "
                 f"({counts.get('failed', 0)} failed and {counts.get('running', 0)} interrupted before: retried) "
                 f"on {pool.describe()}")
        forecast, inflight, stopped = Forecast(), {}, None
        finished = failed = 0
        try:
            while todo or inflight:
                while todo and not stopped and len(inflight) < pool.capacity():
                    run_id = todo[0]
                    if budget is not None and not budget.allows(forecast, run_id, by_id[run_id]):
                        stopped = budget.reason
                        log.info(f"sweep: not launching more runs ({stopped}); the rest stay pending")
                        break
                    store.mark_running(run_id)
                    inflight[pool.submit(run_id, by_id[run_id])] = run_id
                    todo.pop(0)
                if stopped and not inflight:
                    break
                done = pool.wait(list(inflight), poll_s) if inflight else []
                _progress(pool, forecast, by_id, todo, inflight, pool.capacity())
                for handle in done:
                    run_id = inflight.pop(handle)
                    result, error = pool.outcome(handle)
                    name = grid.label(by_id[run_id], grid.varying_axes(configs))
                    if error is not None:
                        failed += 1
                        store.mark_failed(run_id, error)
                        log.info(f"sweep: FAILED {name}: {error}")
                    elif store.finish(run_id, result) == "diverged":
                        finished += 1
                        log.info(f"sweep: DIVERGED {name}: {store.error(run_id)}")
                    else:
                        finished += 1
                        log.info(f"sweep: done {name}: accuracy {100 * result['final_accuracy']:.2f}%, "
                                 f"{result['train_time_s']:.1f} s, {result['energy_j']:.2f} J "
                                 f"({_source(result['energy_source'])}) on {result['host']}")
        finally:
            pool.close(cancel=True)
        counts = store.counts(ids)
        csv_path = store.export_csv(ids=ids)
    return {"ids": ids, "finished": finished, "failed": failed, "counts": counts, "csv": csv_path,
            "stopped": stopped}


def _progress(pool, forecast, by_id, todo, inflight, capacity):
    for message in pool.progress():
        config = by_id.get(message["id"])
        if config is None:
            continue
        forecast.observe(config, message)
        if message["epoch"] != 1:
            continue
        left = forecast.remaining([(i, by_id[i]) for i in list(inflight.values()) + todo])
        line = (f"sweep: {grid.label(config)} epoch 1/{message['epochs']}: {message['time_s']:.1f} s, "
                f"{message.get('energy_j') or 0:.2f} J ({_source(message.get('energy_source'))})")
        if left is not None:
            line += (f"; forecast for the rest of the sweep: ~{left[0] / max(1, capacity):.0f} s wall on "
                     f"{capacity} worker(s), ~{left[1]:.1f} J ({_source(forecast.energy_source)})")
        log.info(line)


def _source(source):
    return "estimated by the energy model" if source in (None, "model") else f"measured: {source}"
