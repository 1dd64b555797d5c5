"""The variants a comparison can contain, each derived from the trained baseline by one technique.

A builder takes the ``CompareContext`` and returns a ``Variant``: the model to evaluate, how to save
it (so the reported size is a real file), and what deriving it cost (training time and energy).
Builders register themselves by name with ``@variant("name")``; ``pipeline.run_compare`` calls them in
the order asked, and a later variant can reuse an earlier one (pruned+quantized starts from pruned).
"""
import copy
import os
from dataclasses import dataclass, field

from tinyeff import io, train
from tinyeff.data.transforms import preprocess_config
from tinyeff.models import knobs

BUILDERS = {}
DESCRIPTIONS = {}


def variant(name, description):
    def register(fn):
        BUILDERS[name] = fn
        DESCRIPTIONS[name] = description
        return fn
    return register


@dataclass
class Variant:
    name: str
    model: object
    description: str
    train_time_s: float = 0.0
    train_energy_j: float = 0.0
    history: dict = None
    save: object = None            # save(path) -> bytes written; default io.save
    notes: list = field(default_factory=list)
    epochs: int = None             # epochs of training behind the weights (None: not known, model loaded)
    extra_epochs: int = 0          # of which fine-tuning on top of the baseline's training
    loss_name: str = "cross-entropy"   # what ``history["train_loss"]`` measures

    def write(self, path):
        if self.save is not None:
            return self.save(path)
        return io.save(self.model, path)


@dataclass
class CompareContext:
    """Everything the builders share: data, settings, the baseline and the variants built so far."""
    model_name: str
    data_name: str
    train_split: object
    test_split: object
    out_dir: str
    epochs: int = 5
    finetune_epochs: int = 2
    sparsity: float = 0.9
    batch_size: int = 64
    lr: float = 1e-3
    seed: int = 0
    progress: bool = True
    baseline_path: str = None
    built: dict = field(default_factory=dict)
    variants: tuple = ()
    model_options: dict = field(default_factory=dict)     # knobs.build's width, shortcut, init
    preprocess: str = "standardize"

    def build(self, width_scale=1.0):
        """A fresh model of the comparison's architecture (``width_scale`` times its width)."""
        options = dict(self.model_options)
        if width_scale != 1.0:
            options["width"] = (options.get("width") or 1.0) * width_scale
        model = knobs.build(self.model_name, self.train_split, **options)
        model.preprocess = preprocess_config(self.train_split, self.preprocess)
        return model

    def fit(self, model, epochs, name, **kwargs):
        """Train ``model`` with the comparison's settings; return fit's metrics."""
        kwargs.setdefault("lr", self.lr)
        return train.fit(model, self.train_split, self.test_split, epochs=epochs, batch_size=self.batch_size,
                         seed=self.seed, schedule="cosine", progress=self.progress,
                         out_dir=os.path.join(self.out_dir, "runs", name), **kwargs)

    def baseline_copy(self):
        """An independent copy of the trained baseline (derivations must not alter it)."""
        return copy.deepcopy(self.built["baseline"].model)


def from_metrics(name, model, metrics, description):
    return Variant(name, model, description, train_time_s=metrics["train_time_s"],
                   train_energy_j=metrics["energy"]["total_j"], history=metrics["history"])


@variant("baseline", "dense float32, trained from scratch")
def build_baseline(ctx):
    if ctx.baseline_path:
        header, arrays = io.read(ctx.baseline_path)
        kind = header.get("kind", "float")
        derived = [v for v in ctx.variants if v != "baseline"]
        if kind not in io.FLOAT_KINDS and derived:
            raise ValueError(f"compare: --baseline {ctx.baseline_path} holds a {kind} model, which variants "
                             f"{derived} cannot start from; pass the float model it was made from, or "
                             "--variants baseline to measure it alone")
        model = io.load(ctx.baseline_path)
        v = Variant("baseline", model, f"{kind} model loaded from {ctx.baseline_path}")
        v.save = lambda path: io.write(path, header, arrays)     # the file as loaded, in its own kind
        v.notes.append("training time and energy not measured in this run (model loaded)")
        return v
    model = ctx.build()
    metrics = ctx.fit(model, ctx.epochs, "baseline")
    v = from_metrics("baseline", model, metrics, DESCRIPTIONS["baseline"])
    v.epochs = ctx.epochs
    return v


def baseline_epochs(ctx):
    """Epochs of training behind the baseline's weights (None when it was loaded from a file)."""
    return None if ctx.baseline_path else ctx.epochs
