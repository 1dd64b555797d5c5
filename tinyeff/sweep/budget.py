"""Forecasting what is left of a sweep, and a time / energy budget that stops launching runs.

The one idea: after one epoch of a configuration we know what an epoch of it costs, and a run's cost
is nearly proportional to epochs x training images, so the first epoch of every run sharpens the
forecast of everything still to do. A configuration nobody has trained yet borrows the per-image
epoch cost of runs with the same architecture (model, depth, width), or else the mean over all runs
seen so far. The forecast is an estimate and the printed line says so; the energy figure carries the
source of the epochs it was learned from (measured or estimated by the energy model).

NOTE: an epoch's cost includes its evaluation pass and, for the first epoch in a fresh process, the
JIT warm-up, so early forecasts lean high.
"""
import time


def arch_key(config):
    return (config["model"], config.get("depth"), config.get("width"))


class Forecast:
    """Per-image epoch costs learned from progress messages; predictions for configs not yet done."""

    def __init__(self):
        self.by_arch = {}                # arch key -> [seconds per image-epoch, joules per image-epoch]
        self.done_epochs = {}            # run id -> epochs reported
        self.spent_j = 0.0
        self.energy_source = None
        self.train_images = {}           # dataset -> training images a run without --limit used

    def observe(self, config, message):
        """Learn from one epoch report (a row from ``job.EpochRecorder`` plus ``id`` and ``epochs``)."""
        self.done_epochs[message["id"]] = message["epoch"]
        self.spent_j += message.get("energy_j") or 0.0
        self.energy_source = message.get("energy_source") or self.energy_source
        if config.get("limit") is None:
            self.train_images[config["data"]] = message["train_examples"]
        if message["epoch"] != 1 or not message.get("time_s"):
            return
        images = max(1, message["train_examples"])
        cost = [message["time_s"] / images, (message.get("energy_j") or 0.0) / images]
        self.by_arch.setdefault(arch_key(config), []).append(cost)

    def per_image_epoch(self, config):
        """(seconds, joules) per training image per epoch for ``config``, or None before any data."""
        costs = self.by_arch.get(arch_key(config)) or [c for cs in self.by_arch.values() for c in cs]
        if not costs:
            return None
        return tuple(sum(c[i] for c in costs) / len(costs) for i in (0, 1))

    def images(self, config):
        """Training images a run of ``config`` sees (None while unknown)."""
        full = self.train_images.get(config["data"])
        if config.get("limit") is None:
            return full
        return config["limit"] if full is None else min(config["limit"], full)

    def remaining(self, items):
        """(run-seconds, joules) still to spend on ``items`` ((run id, config) pairs), or None if unknown."""
        seconds = joules = 0.0
        for run_id, config in items:
            cost, images = self.per_image_epoch(config), self.images(config)
            if cost is None or images is None:
                return None
            epochs_left = config["epochs"] - self.done_epochs.get(run_id, 0)
            seconds += cost[0] * images * epochs_left
            joules += cost[1] * images * epochs_left
        return seconds, joules


class Budget:
    """``--budget-seconds`` (wall time of this sweep) and ``--budget-joules`` (energy of its runs).

    ``allows(forecast, run_id, config)`` is False once launching the run would, by the forecast,
    end past either budget; runs not launched stay pending in the store for the next sweep.
    """

    def __init__(self, seconds=None, joules=None, clock=time.monotonic):
        for name, value in (("--budget-seconds", seconds), ("--budget-joules", joules)):
            if value is not None and not value > 0:
                raise ValueError(f"sweep: {name} {value} must be positive")
        self.seconds, self.joules, self.clock = seconds, joules, clock
        self.t0 = clock()
        self.reason = None

    def elapsed(self):
        return self.clock() - self.t0

    def allows(self, forecast, run_id, config):
        cost = forecast.remaining([(run_id, config)]) or (0.0, 0.0)
        if self.seconds is not None and self.elapsed() + cost[0] > self.seconds:
            self.reason = (f"time budget: {self.elapsed():.0f} s spent + {cost[0]:.0f} s forecast for the next run "
                           f"> {self.seconds:g} s")
            return False
        if self.joules is not None and forecast.spent_j + cost[1] > self.joules:
            self.reason = (f"energy budget: {forecast.spent_j:.1f} J spent + {cost[1]:.1f} J forecast for the "
                           f"next run > {self.joules:g} J")
            return False
        return True
