"""The few exception types tinyeff raises besides ValueError/TypeError, so callers can catch them."""


class TinyeffError(Exception):
    """Base class of tinyeff's own errors."""


class DataFormatError(TinyeffError, ValueError):
    """A data file is truncated, corrupt, mislabeled or not in the format its name promises."""


class ChecksumError(TinyeffError, ValueError):
    """A downloaded or cached file does not match its published checksum."""


class KernelUnavailable(TinyeffError, RuntimeError):
    """A kernel tier was asked for that cannot run on this machine (the message says why)."""


class ModelFileError(TinyeffError, ValueError):
    """A model file is truncated, from another architecture, or holds tensors of the wrong shape."""


class EnergyMeterError(TinyeffError, RuntimeError):
    """An energy meter cannot be read (permission, missing counter, frozen counter)."""


class OutputDirBusy(TinyeffError, RuntimeError):
    """Another run holds the lock on the output directory."""


class TrainingDiverged(TinyeffError, RuntimeError):
    """A loss or a parameter became NaN or infinite; training stopped and kept the last good checkpoint."""


class NonFiniteResult(TinyeffError, ValueError):
    """A result about to be saved holds NaN or Infinity; it is refused instead of written."""
