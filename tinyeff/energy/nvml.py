"""NVIDIA GPU energy through NVML (optional; imported lazily, never required).

``nvmlDeviceGetTotalEnergyConsumption`` returns mJ since the driver loaded (Volta or newer) as a
64-bit count that does not wrap. Readings update every 20-100 ms, so short windows are coarse.
tinyeff has no GPU kernels; this backend exists so a GPU box's total can be measured. It is only
used when asked for (``EnergyMeter(backend="nvml")``); ``probe`` reports whether it would work.
"""
import importlib

from tinyeff.energy.base import Backend, Domain
from tinyeff.errors import EnergyMeterError

MJ = 1e-3


class NvmlBackend(Backend):
    """Read every GPU's total energy counter.

    Args:
        module_name: the NVML binding to import (``pynvml``, from nvidia-ml-py); tests inject a fake.
    """
    name = "nvml"

    def __init__(self, module_name="pynvml"):
        super().__init__()
        self.module_name = module_name
        self._nvml = None
        self._handles = {}

    def discover(self):
        try:
            nvml = importlib.import_module(self.module_name)
        except ImportError as exc:
            raise EnergyMeterError(f"{self.module_name} not installed (pip install nvidia-ml-py); "
                                   f"only needed on a machine with an NVIDIA GPU ({exc})") from exc
        try:
            nvml.nvmlInit()
            count = nvml.nvmlDeviceGetCount()
            handles = {f"gpu{i}": nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)}
            for handle in handles.values():
                nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
        except Exception as exc:   # pynvml raises NVMLError subclasses generated at import time
            raise EnergyMeterError(f"NVML unusable: {exc} (no NVIDIA driver or GPU older than "
                                   f"Volta)") from exc
        if not handles:
            raise EnergyMeterError("NVML found no GPU")
        self._nvml, self._handles = nvml, handles
        self.domains = [Domain(name, MJ, None, "nvmlDeviceGetTotalEnergyConsumption")
                        for name in handles]

    def read(self):
        try:
            return {name: int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(h))
                    for name, h in self._handles.items()}
        except Exception as exc:
            raise EnergyMeterError(f"nvml: reading a counter failed: {exc}") from exc
