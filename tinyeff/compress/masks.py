"""Pruning masks as pure functions on arrays: which weights to keep, never how to apply it.

Every function takes a weight array ``w`` and returns a boolean *keep* mask of the same shape
(True = the weight survives). None of them touches a model; ``prune.py`` attaches the result.

Conventions shared by all of them:
- ``amount`` is a fraction in [0, 1] or a non-negative int count of weights (or channels) to prune.
- ``mask`` (optional) is the keep mask already in force. Masks compose: the new mask only removes
  weights that are still kept, and a fractional ``amount`` is relative to the *still-kept* weights
  (PyTorch's ``PruningContainer`` convention), so pruning 50% twice leaves 25%. An int ``amount``
  is an absolute count of additional weights, which is what the schedules use to hit an exact
  target sparsity.
- Ties are broken by position (``np.argsort(kind="stable")``), so results are deterministic.

What this file leaves out: second-order saliency (OBD/OBS), movement pruning, and anything that
needs gradients; those would be further ``*_mask`` functions with the same shape.
"""
import numbers

import numpy as np


def check_amount(amount, total, what="weights"):
    """Turn ``amount`` into a count in [0, total]; raise ValueError naming the fix."""
    if isinstance(amount, bool) or not isinstance(amount, numbers.Real):
        raise ValueError(f"prune: amount={amount!r} must be a fraction in [0, 1] or a non-negative int count")
    if isinstance(amount, numbers.Integral):
        if amount < 0 or amount > total:
            raise ValueError(f"prune: amount={amount} {what} is outside [0, {total}], the {what} "
                             "still unpruned; pass a smaller count or a fraction in [0, 1]")
        return int(amount)
    if not 0.0 <= float(amount) <= 1.0 or np.isnan(amount):
        raise ValueError(f"prune: amount={amount} must be a fraction in [0, 1] or a non-negative int count")
    return int(round(float(amount) * total))


def _current(w, mask):
    w = np.asarray(w)
    if mask is None:
        return w, np.ones(w.shape, dtype=bool)
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != w.shape:
        raise ValueError(f"prune: mask shape {mask.shape} does not match weight shape {w.shape}")
    return w, mask


def _drop_lowest(scores, keep, count):
    """Copy of ``keep`` with the ``count`` kept entries of lowest score set to False."""
    flat_keep = keep.reshape(-1).copy()
    kept = np.flatnonzero(flat_keep)
    if count:
        order = np.argsort(scores.reshape(-1)[kept], kind="stable")
        flat_keep[kept[order[:count]]] = False
    return flat_keep.reshape(keep.shape)


def magnitude_mask(w, amount, mask=None):
    """Unstructured L1 magnitude pruning: drop the ``amount`` smallest |w| among the kept weights.

    Args:
        w: weight array, any shape. amount: fraction of still-kept weights, or int count.
        mask: keep mask already in force (bool, same shape), or None.

    Returns:
        bool keep mask, same shape as ``w``.

    Raises:
        ValueError: ``amount`` outside [0, 1] (or the count exceeds the kept weights).
    """
    w, keep = _current(w, mask)
    count = check_amount(amount, int(keep.sum()))
    return _drop_lowest(np.abs(w), keep, count)


def random_mask(w, amount, mask=None, seed=0):
    """Drop ``amount`` of the kept weights uniformly at random (the control for magnitude pruning)."""
    w, keep = _current(w, mask)
    count = check_amount(amount, int(keep.sum()))
    scores = np.random.default_rng(seed).random(w.shape)
    return _drop_lowest(scores, keep, count)


def channel_mask(w, amount, dim=0, norm=1, mask=None):
    """Structured pruning: drop whole slices along ``dim`` (dim 0 = output channels / filters).

    A slice's score is the L1 (``norm=1``) or L2 (``norm=2``) norm of its kept weights (Li et al.
    2017 use L1). ``amount`` counts slices: a fraction of the slices that still have a kept weight,
    or an int number of slices.

    Returns:
        bool keep mask, same shape as ``w``, constant along every axis except ``dim``.
    """
    if norm not in (1, 2):
        raise ValueError(f"channel_mask: norm={norm!r} must be 1 (L1) or 2 (L2)")
    w, keep = _current(w, mask)
    if not -w.ndim <= dim < w.ndim:
        raise ValueError(f"channel_mask: dim={dim} is out of range for a weight of shape {w.shape}")
    dim = dim % w.ndim
    axes = tuple(a for a in range(w.ndim) if a != dim)
    masked = np.abs(np.where(keep, w, 0).astype(np.float64))
    scores = masked.sum(axis=axes) if norm == 1 else np.sqrt((masked ** 2).sum(axis=axes))
    alive = keep.any(axis=axes)                                          # (w.shape[dim],)
    count = check_amount(amount, int(alive.sum()), what="channels")
    alive = _drop_lowest(scores, alive, count)
    shape = [1] * w.ndim
    shape[dim] = -1
    return keep & alive.reshape(shape)


def nm_mask(w, n=2, m=4, mask=None):
    """N:M semi-structured sparsity: in every group of ``m`` consecutive inputs keep the ``n`` largest.

    Groups run along the input dimension, as sparse tensor cores expect: IN for a linear weight
    (OUT, IN), and the input channels C for a conv weight (OC, C, KH, KW), taken at each (kh, kw)
    tap. Weights already pruned count as zeros and are never revived.

    Raises:
        ValueError: ``n``/``m`` invalid, or the input dimension is not divisible by ``m``.
    """
    if not (isinstance(n, numbers.Integral) and isinstance(m, numbers.Integral) and 0 <= n <= m and m >= 1):
        raise ValueError(f"nm_mask: need integers 0 <= n <= m and m >= 1, got n={n}, m={m} (e.g. 2:4 or 4:8)")
    w, keep = _current(w, mask)
    if w.ndim not in (2, 4):
        raise ValueError(f"nm_mask: weight shape {w.shape} must be (OUT, IN) or (OC, C, KH, KW)")
    if w.shape[1] % m:
        raise ValueError(f"nm_mask: the input dimension of weight {w.shape} has {w.shape[1]} entries, "
                         f"not divisible by m={m}; choose m dividing it or leave this layer out (layers=...)")
    # Move the input dim last, then split it into groups of m: (..., C // m, m).
    order = (0, 2, 3, 1) if w.ndim == 4 else (0, 1)
    wt = np.transpose(np.where(keep, np.abs(w), -1.0), order)         # pruned weights score -1
    groups = wt.reshape(-1, m)
    rank = np.argsort(np.argsort(-groups, axis=1, kind="stable"), axis=1, kind="stable")
    keep_t = (rank < n).reshape(wt.shape)
    inverse = np.argsort(order)
    return np.transpose(keep_t, inverse) & keep


def global_magnitude_masks(weights, amount, masks=None):
    """Magnitude pruning with one threshold for all layers together (Frankle & Carbin's "global").

    Args:
        weights: dict name -> weight array. amount: fraction of all still-kept weights, or int count.
        masks: dict name -> keep mask already in force (missing names: all kept), or None.

    Returns:
        dict name -> bool keep mask. Layers whose weights are larger lose fewer of them.
    """
    masks = masks or {}
    names = list(weights)
    currents = [_current(weights[k], masks.get(k)) for k in names]
    keep_all = np.concatenate([keep.reshape(-1) for _, keep in currents])
    scores = np.concatenate([np.abs(w).reshape(-1).astype(np.float64) for w, _ in currents])
    count = check_amount(amount, int(keep_all.sum()))
    keep_all = _drop_lowest(scores, keep_all, count)
    out, start = {}, 0
    for name, (w, _) in zip(names, currents):
        out[name] = keep_all[start:start + w.size].reshape(w.shape)
        start += w.size
    return out
