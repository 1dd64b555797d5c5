"""The sweep's results store: one SQLite database (stdlib ``sqlite3``) in the sweep directory.

The one idea: the database, not the process, remembers what is done. ``runs`` has one row per
resolved config, keyed by its hash (``grid.config_id``), with a status: ``pending`` (never run, or
not launched because of a budget), ``running`` (launched; if the sweep dies, the row stays here and
the next sweep retries it), ``done``, ``diverged`` (the loss became NaN or infinite: a result of
the config, kept with its epochs but no final metrics, and not retried, since the same config and
seed diverge again) or ``failed`` (an error; the message is kept and the run is retried next time). ``epochs`` has one row per (run, epoch). A finished run is written in one transaction, run
row and epochs together, so a killed sweep loses at most the runs that were in flight and never
leaves half a result. Only the driver process writes; workers return results to it.

``export_csv`` writes ``results.csv`` (one row per run, config columns then metrics) through a
temporary file and a rename. A NaN metric is stored as NULL, never as a number.
"""
import csv
import json
import math
import os
import sqlite3
import time

from tinyeff import fsio

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    host TEXT,
    threads INTEGER,
    started REAL,
    finished REAL,
    final_accuracy REAL,
    train_time_s REAL,
    energy_j REAL,
    energy_source TEXT,
    energy_label TEXT,
    macs_dense INTEGER,
    macs_effective INTEGER,
    params INTEGER,
    params_final INTEGER,
    peak_memory_bytes INTEGER,
    peak_memory_source TEXT,
    pruning_note TEXT,
    result TEXT
);
CREATE TABLE IF NOT EXISTS epochs (
    run_id TEXT NOT NULL REFERENCES runs(id),
    epoch INTEGER NOT NULL,
    train_loss REAL,
    train_accuracy REAL,
    test_loss REAL,
    test_accuracy REAL,
    lr REAL,
    time_s REAL,
    energy_j REAL,
    energy_source TEXT,
    params INTEGER,
    macs_dense INTEGER,
    macs_effective INTEGER,
    PRIMARY KEY (run_id, epoch)
);
"""
RUN_METRICS = ("host", "threads", "final_accuracy", "train_time_s", "energy_j", "energy_source", "energy_label",
               "macs_dense", "macs_effective", "params", "params_final", "peak_memory_bytes",
               "peak_memory_source", "pruning_note")
EPOCH_FIELDS = ("train_loss", "train_accuracy", "test_loss", "test_accuracy", "lr", "time_s", "energy_j",
                "energy_source", "params", "macs_dense", "macs_effective")


DIVERGED_NULL = ("final_accuracy", "energy_j", "train_time_s")
FINISHED = ("done", "diverged")           # statuses a re-run does not execute again


def _clean(value):
    """A NaN or infinity never becomes a stored number."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _divergence(result):
    """Why a result is not a usable result (training diverged, a non-finite loss or accuracy), or None."""
    if result.get("diverged"):
        return result["diverged"]
    for e in result.get("epochs", []):
        for key in ("train_loss", "test_loss"):
            if e.get(key) is not None and _clean(float(e[key])) is None:
                return f"diverged: {key} is {e[key]} at epoch {e['epoch']}; try a lower --lr"
    if _clean(result.get("final_accuracy")) is None:
        return "no finite test accuracy; not saved as a result"
    return None


class Store:
    """The ``sweep.db`` of one sweep directory. Use as a context manager or call ``close()``."""

    def __init__(self, directory):
        os.makedirs(directory, exist_ok=True)
        self.directory = directory
        self.path = os.path.join(directory, "sweep.db")
        try:
            self.db = sqlite3.connect(self.path, timeout=30)
            self.db.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise ValueError(f"sweep: {self.path} is not a usable SQLite database ({exc}); "
                             "choose another --out or delete the file") from None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.db.close()

    # --- writing (driver only) ---------------------------------------------------------------------
    def add(self, run_id, config):
        """Record a grid point as pending unless the store already knows it."""
        with self.db:
            self.db.execute("INSERT OR IGNORE INTO runs (id, config) VALUES (?, ?)",
                            (run_id, json.dumps(config, sort_keys=True)))

    def mark_running(self, run_id):
        with self.db:
            self.db.execute("UPDATE runs SET status='running', attempts=attempts+1, started=?, error=NULL "
                            "WHERE id=?", (time.time(), run_id))

    def mark_pending(self, run_id):
        with self.db:
            self.db.execute("UPDATE runs SET status='pending' WHERE id=? AND status='running'", (run_id,))

    def mark_failed(self, run_id, error):
        with self.db:
            self.db.execute("UPDATE runs SET status='failed', error=?, finished=? WHERE id=?",
                            (str(error)[:2000], time.time(), run_id))

    def finish(self, run_id, result):
        """Store a finished run and its epochs in one transaction.

        Returns:
            "done", or "diverged" when a loss is NaN/infinite or the accuracy is missing: then the
            run's metrics are stored as NULL, never as numbers, and the error says at which epoch.
        """
        diverged = _divergence(result)
        values = [None if diverged and k in DIVERGED_NULL else _clean(result.get(k)) for k in RUN_METRICS]
        status = "diverged" if diverged else "done"
        with self.db:
            self.db.execute(f"UPDATE runs SET status=?, error=?, finished=?, result=?, "
                            f"{', '.join(f'{k}=?' for k in RUN_METRICS)} WHERE id=?",
                            [status, diverged, time.time(), json.dumps(result, default=str)] + values + [run_id])
            self.db.execute("DELETE FROM epochs WHERE run_id=?", (run_id,))
            self.db.executemany(
                f"INSERT INTO epochs (run_id, epoch, {', '.join(EPOCH_FIELDS)}) "
                f"VALUES (?, ?, {', '.join('?' for _ in EPOCH_FIELDS)})",
                [[run_id, e["epoch"]] + [_clean(e.get(k)) for k in EPOCH_FIELDS] for e in result["epochs"]])
        return status

    # --- reading -----------------------------------------------------------------------------------
    def error(self, run_id):
        row = self.db.execute("SELECT error FROM runs WHERE id=?", (run_id,)).fetchone()
        return row[0] if row else None

    def status(self, run_id):
        row = self.db.execute("SELECT status FROM runs WHERE id=?", (run_id,)).fetchone()
        return row[0] if row else None

    def counts(self, ids=None):
        """{status: count} over ``ids`` (default: every run)."""
        rows = self.db.execute("SELECT id, status FROM runs").fetchall()
        wanted = None if ids is None else set(ids)
        out = {}
        for run_id, status in rows:
            if wanted is None or run_id in wanted:
                out[status] = out.get(status, 0) + 1
        return out

    def runs(self, ids=None, status="done"):
        """Run rows as dicts (config parsed, ``epochs`` attached), optionally only ``ids``/``status``."""
        self.db.row_factory = sqlite3.Row
        try:
            rows = [dict(r) for r in self.db.execute(
                "SELECT * FROM runs" + (" WHERE status=?" if status else "") + " ORDER BY rowid",
                (status,) if status else ())]
            epochs = {}
            for r in self.db.execute("SELECT * FROM epochs ORDER BY run_id, epoch"):
                epochs.setdefault(r["run_id"], []).append(dict(r))
        finally:
            self.db.row_factory = None
        wanted = None if ids is None else set(ids)
        out = []
        for r in rows:
            if wanted is not None and r["id"] not in wanted:
                continue
            r["config"] = json.loads(r["config"])
            r["result"] = json.loads(r["result"]) if r["result"] else None
            r["epochs"] = epochs.get(r["id"], [])
            out.append(r)
        return out

    def export_csv(self, path=None, ids=None):
        """Write one row per run (any status) to ``results.csv`` (temp file + rename); return the path."""
        path = path or os.path.join(self.directory, "results.csv")
        runs = self.runs(ids, status=None)
        config_keys = list(runs[0]["config"]) if runs else []
        header = ["id"] + config_keys + ["status", "attempts"] + list(RUN_METRICS)
        def write(f):
            writer = csv.writer(f)
            writer.writerow(header)
            for r in runs:
                config = [("+".join(v) or "none") if isinstance(v, list) else v
                          for v in (r["config"].get(k) for k in config_keys)]
                writer.writerow([r["id"]] + config + [r["status"], r["attempts"]] + [r[k] for k in RUN_METRICS])
        return fsio.write_with(path, write, binary=False)
