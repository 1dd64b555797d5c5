"""Downloading dataset files safely: checksum, temporary file + rename, resume after interruption.

``fetch(url, dest, checksum)`` guarantees that ``dest`` either does not exist or holds exactly the
published bytes:

* bytes go to ``dest.part`` in the same directory, renamed onto ``dest`` only after the checksum
  matches (a rename within one directory is atomic, so a reader never sees half a file);
* a checksum mismatch deletes ``dest.part`` and raises ``ChecksumError`` (nothing is left behind);
* an interrupted transfer keeps ``dest.part``; the next attempt (in the same call, up to ``retries``
  times, or in a later call) asks the server for the rest with an HTTP ``Range`` header, and starts
  over cleanly if the server ignores or rejects the range.

Checksums are written ``"md5:<hex>"`` or ``"sha256:<hex>"`` so a table can hold the digest the
dataset authors published, whatever its algorithm. The base URL of every dataset can be replaced by a
mirror (``mirror=`` or ``$TINYEFF_DATA_MIRROR``). Only the standard library's urllib is used.
"""
import hashlib
import http.client
import logging
import os
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from tinyeff.errors import ChecksumError

log = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 16
ALGORITHMS = ("md5", "sha1", "sha256")


class _Interrupted(Exception):
    """A transfer ended early; the partial file is kept for resuming."""


def parse_checksum(checksum):
    """Split ``"md5:<hex>"`` into ``("md5", "<hex>")``, validating both halves."""
    algo, _, digest = str(checksum).partition(":")
    algo, digest = algo.lower(), digest.strip().lower()
    if algo not in ALGORITHMS or not digest or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError(f"checksum {checksum!r} must look like 'md5:<hex>' or 'sha256:<hex>' "
                         f"(algorithms: {', '.join(ALGORITHMS)})")
    return algo, digest


def file_digest(path, algo):
    """Hex digest of a file's bytes with ``algo`` (md5 is used only to match published values)."""
    h = hashlib.new(algo, usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def matches(path, checksum):
    """True if the file at ``path`` has the given ``"algo:hex"`` checksum."""
    algo, digest = parse_checksum(checksum)
    return file_digest(path, algo) == digest


def resolve_url(base_url, file_name, mirror=None):
    """The URL of ``file_name``: under ``mirror`` or ``$TINYEFF_DATA_MIRROR`` if set, else ``base_url``."""
    base = mirror or os.environ.get("TINYEFF_DATA_MIRROR") or base_url
    return base.rstrip("/") + "/" + file_name


def fetch(url, dest, checksum, progress=True, timeout_s=30.0, retries=2):
    """Download ``url`` to ``dest`` and verify its checksum; skip if ``dest`` already matches.

    Args:
        url: http(s) or file URL.
        dest: final path; its directory is created if needed.
        checksum: ``"md5:<hex>"`` or ``"sha256:<hex>"``.
        progress: show a tqdm progress bar on stderr.
        timeout_s: socket timeout of each request.
        retries: extra attempts (each resuming the partial file) after an interrupted transfer.

    Returns:
        ``dest`` as a Path.

    Raises:
        ChecksumError: the complete download does not match (the partial file is deleted).
        ConnectionError: every attempt was interrupted (``dest.part`` is kept; call again to resume),
            or the server refused the request or cannot be reached (the message names the URL, the
            path to place the file at by hand and the mirror option).
    """
    dest = Path(dest)
    algo, digest = parse_checksum(checksum)
    if dest.exists() and file_digest(dest, algo) == digest:
        log.info("%s already present and verified", dest)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    for attempt in range(retries + 1):
        try:
            _transfer(url, part, progress, timeout_s)
            break
        except _Interrupted as exc:
            log.warning("%s: transfer interrupted (%s), attempt %d of %d", dest.name, exc,
                        attempt + 1, retries + 1)
        except urllib.error.URLError as exc:        # offline, unknown host, refused, 404...
            why = f"HTTP {exc.code} {exc.reason}" if isinstance(exc, urllib.error.HTTPError) else exc.reason
            raise ConnectionError(
                f"{dest.name}: cannot download {url} ({why}); on an offline machine "
                f"fetch that URL elsewhere and place the file at {dest}, or pass --mirror BASE_URL "
                f"(or set TINYEFF_DATA_MIRROR) to download from a mirror") from exc
    else:
        kept = part.stat().st_size if part.exists() else 0
        raise ConnectionError(
            f"{dest.name}: download from {url} was interrupted {retries + 1} times ({kept:,} bytes kept "
            f"in {part}); run the same download again to resume, or check the network or mirror")
    got = file_digest(part, algo)
    if got != digest:
        part.unlink()
        raise ChecksumError(
            f"{dest.name}: checksum mismatch for {url} (expected {algo} {digest}, got {got}); "
            f"the download was deleted; try again, or use another mirror if it keeps happening")
    os.replace(part, dest)
    return dest


def _open(url, offset, timeout_s):
    headers = {"User-Agent": "tinyeff"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout_s)


def _transfer(url, part, progress, timeout_s):
    """One attempt: append to ``part`` if the server honours our Range, else rewrite it."""
    offset = part.stat().st_size if part.exists() else 0
    try:
        resp = _open(url, offset, timeout_s)
    except urllib.error.HTTPError as exc:
        if exc.code != 416 or not offset:
            raise
        part.unlink()  # range not satisfiable: the partial file is stale; start over
        offset, resp = 0, _open(url, 0, timeout_s)
    except (ConnectionError, TimeoutError, http.client.HTTPException) as exc:
        raise _Interrupted(f"connecting failed: {exc}") from exc
    with resp:
        content_range = resp.headers.get("Content-Range", "")
        resumed = offset and resp.status == 206 and content_range.startswith(f"bytes {offset}-")
        if not resumed:
            offset = 0  # the server sent the whole file: restart cleanly
        length = resp.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        with open(part, "ab" if resumed else "wb") as f, tqdm(
                total=total, initial=offset, unit="B", unit_scale=True, desc=part.name[:-5],
                disable=None if progress else True, leave=False) as bar:
            try:
                for chunk in iter(lambda: resp.read(CHUNK_BYTES), b""):
                    f.write(chunk)
                    bar.update(len(chunk))
            except (OSError, http.client.HTTPException) as exc:
                raise _Interrupted(str(exc) or type(exc).__name__) from exc
    size = part.stat().st_size
    if total is not None and size < total:
        raise _Interrupted(f"connection closed after {size:,} of {total:,} bytes")
