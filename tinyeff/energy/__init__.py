"""tinyeff.energy: measure energy where a counter exists, estimate it where none does, and always
say which. Public names only; see each module's docstring for the idea it holds."""
from tinyeff.energy.attribution import CpuShareTracker, attribute
from tinyeff.energy.layers import TrainingEnergy, efficiency_score, estimate_model
from tinyeff.energy.measure import KernelMeasurement, measure_kernel
from tinyeff.energy.meter import EnergyMeter, Measurement
from tinyeff.energy.model import CostProfile, EnergyEstimate, WorkCounts, estimate, load_profile
from tinyeff.energy.probe import probe_all
from tinyeff.energy.profile import LayerProfiler

__all__ = ["CostProfile", "CpuShareTracker", "EnergyEstimate", "EnergyMeter", "KernelMeasurement",
           "LayerProfiler", "Measurement", "TrainingEnergy", "WorkCounts", "attribute", "efficiency_score",
           "estimate", "estimate_model", "load_profile", "measure_kernel", "probe_all"]
