"""FLOP/MAC/parameter counts against values derived by hand in the comments."""
import numpy as np
import pytest

from tinyeff import models, nn
from tinyeff.flops import count


@pytest.fixture(scope="module")
def seed_report():
    return count(models.create("seed-cnn"), (1, 3, 32, 32))


def test_seed_cnn_per_layer_macs(seed_report):
    macs = {l.name: l.macs for l in seed_report.layers if l.macs}
    assert macs == {
        "0": 32 * 30 * 30 * 3 * 3 * 3,       # conv1: 32x30x30 outputs, 27 MACs each = 777 600
        "3": 64 * 13 * 13 * 32 * 3 * 3,      # conv2: pool 15 -> conv 13; 288 MACs each = 3 115 008
        "6": 64 * 4 * 4 * 64 * 3 * 3,        # conv3: pool 6 -> conv 4; 576 MACs each = 589 824
        "9": 1024 * 64,                      # fc1: 64*4*4 = 1024 inputs -> 64 = 65 536
        "11": 64 * 10,                       # fc2 = 640
    }
    assert seed_report.totals["macs"] == 4_548_608


def test_seed_cnn_flops_are_two_per_mac_plus_other_ops(seed_report):
    t = seed_report.totals
    # bias adds = conv outputs + fc outputs: 28800 + 10816 + 1024 + 64 + 10 = 40 714
    # ReLU compares: 28800 + 10816 + 1024 + 64 = 40 704
    # max-pool compares, 3 per output: 3 * (32*15*15 + 64*6*6) = 3 * 9504 = 28 512
    assert t["other_flops"] == 40_714 + 40_704 + 28_512
    assert t["flops"] == 2 * 4_548_608 + 109_930


def test_seed_cnn_params_and_bytes(seed_report):
    # 896 + 18 496 + 36 928 + 65 600 + 650 (weights + biases of each conv/linear)
    assert seed_report.totals["params"] == 122_570
    assert seed_report.totals["param_bytes"] == 4 * 122_570
    # activations are the outputs of every layer, fp32: conv1 28 800 floats, relu 28 800, ...
    outputs = 28800 * 2 + 7200 + 10816 * 2 + 2304 + 1024 * 2 + 1024 + 64 * 2 + 10
    assert seed_report.totals["activation_bytes"] == 4 * outputs
    # training peak with SGD momentum: input + activations + params + grads + momentum
    assert seed_report.totals["train_peak_bytes"] == 4 * (3 * 32 * 32 + outputs + 3 * 122_570)


def test_resnet20_totals():
    report = count(models.create("resnet20"), (1, 3, 32, 32))
    # stem: 16*32*32*27 = 442 368
    # stage 1: 6 convs 16->16 at 32x32: 6 * 16*32*32*144 = 14 155 776
    # stage 2: first conv 16->32 stride 2 at 16x16: 32*256*144 = 1 179 648; 5 convs 32->32: 5 * 32*256*288
    #          = 11 796 480; projection 1x1 16->32: 32*256*16 = 131 072
    # stage 3: 64*64*288 = 1 179 648; 5 * 64*64*576 = 11 796 480; projection 64*64*32 = 131 072
    # fc: 64*10 = 640
    expected = 442_368 + 14_155_776 + 1_179_648 + 11_796_480 + 131_072 + 1_179_648 + 11_796_480 + 131_072 + 640
    assert report.totals["macs"] == expected == 40_813_184
    # conv params: stem 3*16*9 = 432; stage 1: 6 * 16*16*9 = 13 824; stage 2: 16*32*9 = 4 608
    # + 5 * 32*32*9 = 46 080 + projection 16*32 = 512; stage 3: 32*64*9 = 18 432 + 5 * 64*64*9
    # = 184 320 + projection 32*64 = 2 048; sum 270 256
    # BN (weight + bias): 7 BNs of 16 channels (stem + 6 in stage 1), 7 of 32, 7 of 64 -> 2 * 784
    # fc: 64*10 + 10 = 650
    assert report.totals["params"] == 270_256 + 2 * 784 + 650 == 272_474


def test_sparse_kernel_counts_only_nonzeros():
    conv = nn.Conv2d(4, 8, 3, padding=1, bias=False)
    w = conv.weight.data
    w[..., :2] = 0                          # 2 of 3 kernel columns zero: nnz = 8*4*3*1 = 96 of 288
    model = nn.Sequential(conv)
    dense = count(model, (2, 4, 5, 5)).layers[0]
    assert dense.macs == dense.macs_effective == 2 * 8 * 25 * 36
    conv.sparse_kernel_ran = True
    sparse = count(model, (2, 4, 5, 5)).layers[0]
    assert sparse.macs_effective == 2 * 25 * 96         # N*OH*OW*nnz
    assert sparse.param_bytes == 96 * (4 + 4) + 9 * 4   # CSR: values + int32 indices + row pointers
    assert sparse.params_nonzero == 96


def test_counts_follow_the_input_actually_run():
    model = models.create("seed-cnn", in_channels=1, input_size=28)
    report = count(model, (3, 1, 28, 28))
    assert report.layers[0].macs == 3 * 32 * 26 * 26 * 9
    assert report.totals["macs_effective_by_dtype"] == {"fp32": report.totals["macs"]}


def test_dtype_is_the_executed_one():
    model = nn.Sequential(nn.Linear(3, 2))
    report = count(model, (4, 3), dtype=np.float64)
    out_dtype = model(__import__("tinyeff").Tensor(np.zeros((4, 3)))).data.dtype
    assert report.layers[0].dtype == {"float64": "fp64", "float32": "fp32"}[out_dtype.name]
