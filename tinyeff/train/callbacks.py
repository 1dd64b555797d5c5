"""What ``fit`` shows its plug-ins: the ``Callback`` base class and the live ``TrainState``.

A callback overrides the moments it needs (``on_train_begin``, ``on_epoch_begin``, ``on_batch_end``,
``on_epoch_end``, ``on_train_end``), each called with the ``TrainState``; pruning schedules and QAT's
observer freezing are callbacks. Setting ``state.stop`` ends training after the current epoch.
"""


class Callback:
    """Base class: override the moments you need. ``state`` is the live ``TrainState``."""

    def on_train_begin(self, state):
        pass

    def on_epoch_begin(self, state):
        pass

    def on_batch_end(self, state):
        pass

    def on_epoch_end(self, state):
        pass

    def on_train_end(self, state):
        pass


class TrainState:
    """What callbacks see: the model, the optimizer, counters, the history and this epoch's logs."""

    def __init__(self, model, optimizer, epochs, steps_per_epoch):
        self.model, self.optimizer = model, optimizer
        self.epochs, self.steps_per_epoch = epochs, steps_per_epoch
        self.epoch, self.step = 0, 0
        self.history = {"epoch": [], "train_loss": [], "train_accuracy": [], "test_loss": [],
                        "test_accuracy": [], "lr": [], "time_s": [], "energy_j": []}
        self.logs = {}
        self.stop = False
