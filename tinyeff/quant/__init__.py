"""int8 quantization with a real integer inference path.

Static post-training quantization (``quantize_static``), dynamic quantization of Linear layers
(``quantize_dynamic``), quantization-aware training (``prepare_qat`` / ``convert``), float16 and
bfloat16 weight storage (``to_lowprec``), and model files without pickle (``save_quantized``,
read back by ``tinyeff.io.load``). See each module's docstring.
"""
from tinyeff.quant.observers import (MinMaxObserver, MovingAverageMinMaxObserver, MSEObserver,
                                     PercentileObserver, make_observer)
from tinyeff.quant.qparams import compute_qparams, dequantize, fake_quant, qrange, quantize
from tinyeff.quant.fold import fold_batchnorm, fold_bn_weights
from tinyeff.quant.prepare import prepare
from tinyeff.quant.convert import QuantizedModel, convert
from tinyeff.quant.ptq import calibrate, quantize_static
from tinyeff.quant.qio import load_quantized, save_quantized
from tinyeff.quant.dynamic import quantize_dynamic
from tinyeff.quant.qat import FreezeObservers, freeze_observers, prepare_qat
from tinyeff.quant.lowprec import round_weights, save_lowprec

__all__ = ["FreezeObservers", "MSEObserver", "MinMaxObserver", "MovingAverageMinMaxObserver", "PercentileObserver",
           "QuantizedModel", "calibrate", "compute_qparams", "convert", "dequantize", "fake_quant", "fold_batchnorm",
           "fold_bn_weights", "freeze_observers", "load_quantized", "make_observer", "prepare", "prepare_qat",
           "qrange", "quantize", "quantize_dynamic", "quantize_static", "round_weights", "save_lowprec",
           "save_quantized"]
