"""The two studies the sweep was built for, as grid blocks: ``--preset hparams`` and ``--preset depth-width``.

Each preset has a full form (the study as published: its grid, the full Fashion-MNIST, its epochs)
and a quick form, the default, that finishes on the bundled ``fashion-mnist-sample`` in minutes on
a 2-core laptop. The quick form's cuts are listed in ``notes`` and printed, so nobody mistakes it
for the study:

- hparams: batch size (32, 64, 128) x learning rate (0.001, 0.01, 0.1) x epochs (10, 20, 30), the
  seed CNN trained with SGD + momentum, ranked by the efficiency score accuracy / energy.
- depth-width: CIFAR ResNets of depth 8..56 x width 0.5..2, shortcuts on and off, Xavier init,
  Adam 1e-3 with step decay, channel pruning every 5 epochs (thinned while training), next to the
  3-layer MLP.
"""

PRESETS = ("hparams", "depth-width")


def preset(name, full=False):
    """(blocks, notes) of preset ``name``: grid blocks (axis -> list of values) and the cuts made.

    Raises:
        ValueError: unknown preset.
    """
    if name == "hparams":
        return _hparams(full)
    if name == "depth-width":
        return _depth_width(full)
    raise ValueError(f"sweep: unknown preset {name!r}; choose {' or '.join(PRESETS)}")


def _hparams(full):
    block = {"model": ["seed-cnn"], "optimizer": ["sgd"], "schedule": ["none"], "batch_size": [32, 64, 128],
             "lr": [0.001, 0.01, 0.1], "epochs": [10, 20, 30], "seed": [0]}
    if full:
        return [dict(block, data=["fashion-mnist"])], []
    quick = dict(block, data=["fashion-mnist-sample"], epochs=[1, 2, 3], limit=[2000])
    return [quick], ["epochs 1, 2, 3 instead of 10, 20, 30",
                     "the bundled 6,000-image Fashion-MNIST sample, first 2,000 training images (--limit 2000)"]


def _depth_width(full):
    resnet = {"model": ["resnet"], "init": ["xavier"], "optimizer": ["adam"], "lr": [0.001], "schedule": ["step"],
              "seed": [0]}
    if full:
        common = dict(resnet, data=["fashion-mnist"], depth=[8, 14, 20, 32, 44, 56], width=[0.5, 1.0, 2.0],
                      epochs=[30])
        blocks = [dict(common, shortcut=[True, False], prune=["none"]),
                  dict(common, shortcut=[True], prune=["channel"], prune_every=[5], prune_sparsity=[0.5]),
                  {"model": ["mlp"], "optimizer": ["adam"], "lr": [0.001], "schedule": ["step"], "epochs": [30],
                   "data": ["fashion-mnist"], "seed": [0]}]
        return blocks, []
    common = dict(resnet, data=["fashion-mnist-sample"], depth=[8, 14, 20], width=[0.5, 1.0], epochs=[3],
                  limit=[1000], schedule=["cosine"])
    blocks = [dict(common, shortcut=[True, False], prune=["none"]),
              dict(common, shortcut=[True], prune=["channel"], prune_every=[1], prune_sparsity=[0.5]),
              {"model": ["mlp"], "optimizer": ["adam"], "lr": [0.001], "schedule": ["cosine"], "epochs": [3],
               "data": ["fashion-mnist-sample"], "limit": [1000], "seed": [0]}]
    return blocks, ["ResNet depth 8, 14, 20 (not up to 56) and width 0.5, 1 (not 2)",
                    "3 epochs instead of 30, channel pruning every epoch instead of every 5",
                    "cosine decay instead of step decay (over 3 epochs a step decay divides the learning rate "
                    "by 10 every epoch, leaving nothing to recover from a pruning event with)",
                    "the bundled Fashion-MNIST sample, first 1,000 training images (--limit 1000)"]
