"""Sweep grids: axes, comma lists, ``+`` joins, TOML grid files, and the resolved config of one point.

The one idea: a sweep is the Cartesian product of a few axes, and every point of it is *resolved*
into one complete, canonical config dict (every knob present, knobs that do not apply to the point's
model set to None), so the same experiment always has the same ``config_id`` hash however it was
asked for. That hash keys the results store, which is what makes a sweep resumable.

Command line: every axis flag takes a comma list (``--lr 0.001,0.01``); a value that is itself a list
joins its parts with ``+`` (``--augment crop+flip,none``). A grid file (TOML) holds the same axes as
keys with a value or a list of values; ``[[grid]]`` tables are blocks whose products are joined
(union), each block overriding the file's top-level keys. What this file leaves out: running the
points (``runner.py``, ``cluster.py``) and storing them (``store.py``).
"""
import hashlib
import itertools
import json
import re

from tinyeff import models

BOOL_WORDS = {"on": True, "true": True, "yes": True, "1": True,
              "off": False, "false": False, "no": False, "0": False}


def _bool(text):
    key = str(text).strip().lower()
    if key not in BOOL_WORDS:
        raise ValueError(f"expected on/off (or true/false), got {text!r}")
    return BOOL_WORDS[key]


def _opt_int(text):
    return None if str(text).lower() in ("none", "all", "") else int(text)


def _names(text):
    """``crop+flip`` -> ["crop", "flip"]; ``none`` -> []."""
    if isinstance(text, (list, tuple)):
        return list(text)
    return [] if str(text).lower() in ("none", "") else str(text).split("+")


def _choice(*options):
    def parse(text):
        value = str(text).strip().lower()
        if value not in options:
            raise ValueError(f"{text!r} is not one of {', '.join(options)}")
        return value
    return parse


# name -> (parser of one value, default). The CLI flag is --name with "_" -> "-".
AXES = {
    "model": (str, "seed-cnn"),
    "depth": (_opt_int, None),
    "width": (float, 1.0),
    "shortcut": (_bool, True),
    "init": (_choice("kaiming", "xavier"), "kaiming"),
    "preprocess": (_choice("standardize", "scale01", "scale_pm1"), "standardize"),
    "optimizer": (_choice("adam", "adamw", "sgd"), "adam"),
    "lr": (float, 1e-3),
    "schedule": (_choice("none", "cosine", "step"), "cosine"),
    "weight_decay": (float, 0.0),
    "batch_size": (int, 64),
    "epochs": (int, 10),
    "augment": (_names, []),
    "prune": (_choice("none", "magnitude", "channel"), "none"),
    "prune_sparsity": (float, 0.5),
    "prune_every": (int, 5),
    "prune_schedule": (_choice("iterative", "polynomial"), "iterative"),
    "precision": (_choice("float32", "mixed_float16", "mixed_bfloat16"), "float32"),
    "seed": (int, 0),
    "data": (str, "fashion-mnist-sample"),
    "limit": (_opt_int, None),
}
RESNET = re.compile(r"^resnet(\d*)$")


def parse_axis(name, text):
    """Values of axis ``name`` from a comma list (or a TOML value / list). Raises ValueError."""
    if name not in AXES:
        raise ValueError(f"sweep: unknown axis {name!r}; axes are: {', '.join(AXES)}")
    parse = AXES[name][0]
    if isinstance(text, list):
        items = text
    elif isinstance(text, str):
        items = [t.strip() for t in text.split(",") if t.strip()]
    else:
        items = [text]
    if not items:
        raise ValueError(f"sweep: --{name.replace('_', '-')} is empty; give one value or a comma list")
    try:
        return [parse(v) for v in items]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"sweep: bad value for --{name.replace('_', '-')}: {exc}") from None


def expand(axes):
    """All resolved points of one block: ``axes`` maps an axis name to a list of values.

    Returns a list of configs in grid order, duplicates (after resolution) removed.
    """
    names = list(axes)
    points = []
    for combo in itertools.product(*(axes[n] for n in names)):
        points.append(resolve(dict(zip(names, combo))))
    return unique(points)


def unique(points):
    seen, out = set(), []
    for p in points:
        key = config_id(p)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def resolve(point):
    """The complete canonical config of one grid point (defaults filled, inapplicable knobs None).

    Raises:
        ValueError: unknown model, a depth that is not 6n + 2, bad pruning numbers.
    """
    unknown = sorted(set(point) - set(AXES))
    if unknown:
        raise ValueError(f"sweep: unknown setting(s) {unknown}; axes are: {', '.join(AXES)}")
    c = {name: default for name, (_, default) in AXES.items()}
    c.update(point)
    c["augment"] = list(c["augment"])
    match = RESNET.match(c["model"])
    if match:
        named = int(match.group(1)) if match.group(1) else None
        if named and c["depth"] is not None and c["depth"] != named:
            raise ValueError(f"sweep: model {c['model']} has depth {named}, but depth={c['depth']} was asked; "
                             "use --model resnet with --depth")
        c["depth"] = c["depth"] or named or 20
        c["model"] = "resnet"
        if c["depth"] < 8 or (c["depth"] - 2) % 6:
            raise ValueError(f"sweep: resnet depth {c['depth']} must be 6n + 2 (8, 14, 20, 32, 44, 56, 110)")
    else:
        if c["model"] not in models.names():
            raise ValueError(f"sweep: unknown model {c['model']!r}; choose one of: {', '.join(models.names())}")
        c["depth"], c["shortcut"] = None, None          # only CIFAR ResNets have these knobs
    if c["prune"] == "none":
        c["prune_sparsity"] = c["prune_every"] = c["prune_schedule"] = None
    else:
        if not 0.0 < c["prune_sparsity"] < 1.0:
            raise ValueError(f"sweep: prune_sparsity={c['prune_sparsity']} must be a fraction in (0, 1)")
        if c["prune_every"] < 1:
            raise ValueError(f"sweep: prune_every={c['prune_every']} must be >= 1 epoch")
    for key in ("epochs", "batch_size"):
        if c[key] < 1:
            raise ValueError(f"sweep: {key}={c[key]} must be >= 1")
    if c["limit"] is not None and c["limit"] < 1:
        raise ValueError(f"sweep: limit={c['limit']} must be >= 1 (or none for all images)")
    if not c["width"] > 0 or not c["lr"] > 0:
        raise ValueError(f"sweep: width={c['width']} and lr={c['lr']} must be positive")
    return c


def config_id(config):
    """A short stable hash of a resolved config: the primary key of the results store."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def label(config, varying=None):
    """A short human label: the model plus the values of the axes that vary in this sweep."""
    name = config["model"] + (str(config["depth"]) if config.get("depth") else "")
    keys = [k for k in (varying or []) if k not in ("model", "depth")]
    parts = [f"{k}={_show(config[k])}" for k in keys if config.get(k) is not None]
    return " ".join([name] + parts)


def _show(value):
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list):
        return "+".join(value) or "none"
    return f"{value:g}" if isinstance(value, float) else str(value)


def varying_axes(configs):
    """Axes with two or more set values among the given configs, in AXES order (None, "does not
    apply to this model", does not count: ``shortcut`` varies only if some run had it off)."""
    return [k for k in AXES if len({json.dumps(c.get(k)) for c in configs if c.get(k) is not None}) > 1]


# --- grid files ----------------------------------------------------------------------------------------
def load_toml(path):
    """Parse a TOML grid file (stdlib ``tomllib``; ``tomli`` on Python 3.10)."""
    try:
        import tomllib
    except ImportError:                       # Python 3.10
        try:
            import tomli as tomllib
        except ImportError:
            raise ValueError("sweep: reading a grid file on Python 3.10 needs tomli; pip install tomli") from None
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise ValueError(f"sweep: cannot read grid file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"sweep: grid file {path} is not valid TOML: {exc}") from None


def blocks_from_table(table, where="grid"):
    """The blocks (dicts axis -> values) a parsed grid table describes."""
    table = dict(table)
    sub = table.pop("grid", None)
    base = {k.replace("-", "_"): v for k, v in table.items()}
    if sub is None:
        return [_parse_block(base, where)]
    if not isinstance(sub, list) or not all(isinstance(b, dict) for b in sub):
        raise ValueError(f"sweep: {where}: 'grid' must be an array of tables ([[grid]] blocks)")
    return [_parse_block({**base, **{k.replace("-", "_"): v for k, v in b.items()}}, where) for b in sub]


def _parse_block(block, where):
    unknown = sorted(set(block) - set(AXES))
    if unknown:
        raise ValueError(f"sweep: {where}: unknown axis {unknown[0]!r}; axes are: {', '.join(AXES)}")
    return {k: parse_axis(k, v if isinstance(v, list) else [v]) for k, v in block.items()}


def expand_blocks(blocks):
    """Resolved points of the union of several blocks, in order, without duplicates."""
    return unique([p for block in blocks for p in expand(block)])
