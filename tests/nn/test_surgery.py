"""nn.surgery: the stage walk every compression pass shares, replace_child, resize_layer."""
import numpy as np

from tinyeff import models, nn
from tinyeff.nn.surgery import join_name, replace_child, resize_layer, sequence_stages


def _names(stage):
    return tuple(part and part[0] for part in stage)


def test_stages_group_each_layer_with_its_bn_relu_and_pool():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(4, 4, 3), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4, 2), nn.ReLU())
    assert [_names(s) for s in sequence_stages(model)] == [("0", "1", "2", "3"), ("4", None, None, "5"),
                                                           ("7", None, "8", None)]


def test_stages_skip_only_what_they_are_told_to():
    model = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5), nn.ReLU())
    assert [_names(s) for s in sequence_stages(model)] == [("0", None, None, None)]
    assert [_names(s) for s in sequence_stages(model, skip=(nn.Dropout,))] == [("0", None, "2", None)]


def test_stages_of_a_resnet_block_follow_definition_order():
    block = models.create("resnet8", in_channels=1).layers[0][0]
    # relu2 is defined after bn2 although the residual add runs between them: fusing passes
    # therefore fuse a ReLU only inside an nn.Sequential
    assert [_names(s) for s in sequence_stages(block)] == [("conv1", "bn1", "relu1", None),
                                                           ("conv2", "bn2", "relu2", None)]


def test_replace_child_keeps_the_run_order():
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2))
    replace_child(model, "0", nn.Identity())
    assert [type(c).__name__ for c in model.children()] == ["Identity", "ReLU", "Linear"]
    assert join_name("", "0") == "0" and join_name("layers.1", "conv1") == "layers.1.conv1"


def test_resize_layer_gives_the_saved_shape():
    conv, bn = nn.Conv2d(8, 16, 3), nn.BatchNorm2d(16)
    resize_layer(conv, (5, 8, 3, 3))
    resize_layer(bn, (5,))
    assert conv.weight.shape == (5, 8, 3, 3) and conv.bias.shape == (5,) and conv.out_channels == 5
    assert bn.num_features == 5 and np.all(bn.running_var == 1)
