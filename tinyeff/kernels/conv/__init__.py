"""Dense direct convolution (forward and weight gradient) and the direct-vs-GEMM lowering policy."""
