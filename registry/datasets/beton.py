"""FFCV ``.beton`` files of registry datasets: written once, verified, found again by content.

One ``.beton`` per split of a dataset as the registry builds it (name + ``dataset_args``, so
the resolution, channels and mini-tier subset are part of it). Each item is stored raw:
field ``image`` = the item's uint8 tensor (``NDArrayField``, ``[C, H, W]`` or
``[C, T, H, W]``), field ``label`` = its int label. The FFCV loader decodes batches back to
exactly the uint8 tensors of the in-memory path, so the recipe's batched augmentation
(``tasks/augment.py``) runs unchanged on the device and switching loaders changes speed only.

Files live in a cache directory: ``--cache-dir``, else ``$POOLREPRO_CACHE``, else
``.cache/poolrepro/beton`` (relative to the working directory; the scheduler's workers run in
the repository root). Next to each ``X.beton`` a manifest ``X.json`` records the dataset,
its args, the split, the item count, the item shape, the source *fingerprint* and the file's
size and SHA-256. The file name is ``<dataset>[-<args hash>]-<split>-<fingerprint>.beton``.

* **fingerprint** of a split: SHA-256 of its uint8 tensor and labels (in-memory data), or of
  the dataset's provenance, length and a seeded sample of decoded items (item-decoding
  datasets). A loader finds a ``.beton`` by this fingerprint of the data it was about to use,
  so a prepared file is never used for different data.
* **writing**: to ``X.beton.tmp-<pid>``, then read back (count, field layout, and the
  decoded content re-hashed against the fingerprint), then renamed; the manifest is written
  (atomically) last. A half-written file has no manifest and is never used.
* **using**: size (truncation), count (header vs manifest vs the split), layout and SHA-256
  (corruption) are checked before a loader opens the file; any mismatch raises
  :class:`DatasetError` with the fix.

Nothing here imports ffcv at module import; :func:`ffcv_installed` is cheap.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.util
import json
import multiprocessing as mp
import os
import queue
import time
import traceback
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from registry.datasets.base import DataBundle, DatasetError, Split, sha256_file
from suite.specs import canonical_json, short_hash

FORMAT = "poolrepro-beton/1"
DEFAULT_DIR = ".cache/poolrepro/beton"
CACHE_ENV = "POOLREPRO_CACHE"
SPLITS = ("train", "test")
ENABLE_HINT = (
    "install the ffcv extra: `apt-get install pkg-config libopencv-dev libturbojpeg0-dev "
    "build-essential` then `pip install 'poolrepro[ffcv]'` (or `pip install ffcv==1.0.2`)"
)
#: Files up to this size are checksummed in full each time a loader opens them; larger ones
#: (ImageNet-scale) get size + SHA-256 of their first and last 64 MiB (``quick_sha256``).
FULL_CHECK_BYTES = 4 << 30
_QUICK_BLOCK = 64 << 20

Progress = Callable[[int, int], None]  # (items done, items total)


# -- locations and availability ---------------------------------------------------------
def beton_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where ``.beton`` files live: ``cache_dir``, else ``$POOLREPRO_CACHE``, else
    ``.cache/poolrepro/beton``."""
    d = cache_dir or os.environ.get(CACHE_ENV) or DEFAULT_DIR
    return Path(d).expanduser()


def ffcv_installed() -> bool:
    """Whether the ffcv package is present (does not import it: that takes seconds)."""
    return importlib.util.find_spec("ffcv") is not None


def import_ffcv() -> None:
    """Import ffcv or raise :class:`DatasetError` saying how to enable it.

    Importing ffcv sets torch's CPU thread count to 1 (``Compiler.set_num_threads(1)`` at
    module level); the process's setting is restored here.
    """
    threads = torch.get_num_threads()
    try:
        import ffcv  # noqa: F401
        import ffcv.loader  # noqa: F401
    except ImportError as e:
        raise DatasetError(f"FFCV is not available here ({e}); {ENABLE_HINT}") from e
    finally:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)


# -- fingerprints -----------------------------------------------------------------------
def _item(split: Split, i: int) -> tuple[torch.Tensor, int]:
    if split.in_memory:
        return split.x[i], int(split.y[i])
    try:
        x, y = split.dataset[i]
    except DatasetError:
        raise
    except Exception as e:  # a file that does not decode: name it, do not skip it
        raise DatasetError(f"item {i} of the dataset could not be read "
                           f"({type(e).__name__}: {e}); fix or remove it, then retry") from e
    return torch.as_tensor(x), int(y)


def _probe_indices(n: int, k: int = 16) -> list[int]:
    g = torch.Generator().manual_seed(n)
    rand = torch.randint(0, max(1, n), (k,), generator=g).tolist() if n else []
    return sorted({0, n // 2, n - 1, *rand} & set(range(n)))


def _header(n: int, shape: tuple[int, ...], extra: dict[str, Any] | None = None) -> bytes:
    return canonical_json({"format": FORMAT, "n": n, "shape": list(shape), "dtype": "uint8",
                           **(extra or {})}).encode()


def split_fingerprint(split: Split, provenance: dict[str, Any] | None = None) -> str:
    """SHA-256 naming exactly the data of ``split``.

    In memory: header (count, item shape) + every pixel + every label (int64). Item-decoding
    datasets: header + the bundle's ``provenance`` + the dataset type (and subset indices) +
    a seeded sample of decoded items, since reading every item would cost a full pass.
    """
    h = hashlib.sha256()
    if split.in_memory:
        x = split.x.contiguous()
        if x.dtype != torch.uint8:
            raise DatasetError(f"a .beton stores uint8 images; this split holds {x.dtype}")
        h.update(_header(len(x), tuple(x.shape[1:])))
        h.update(memoryview(x.numpy()).cast("B"))
        h.update(memoryview(split.y.to(torch.int64).contiguous().numpy()).cast("B"))
        return h.hexdigest()
    ds, n = split.dataset, len(split)
    first = _item(split, 0)[0] if n else torch.zeros(0, dtype=torch.uint8)
    subset = getattr(ds, "indices", None)
    extra = {"kind": "dataset", "type": type(ds).__qualname__, "provenance": provenance or {},
             "subset": short_hash(list(map(int, subset)), 32) if subset is not None else None}
    h.update(_header(n, tuple(first.shape), extra))
    for i in _probe_indices(n):
        x, y = _item(split, i)
        h.update(np.ascontiguousarray(x.numpy()).tobytes())
        h.update(str(y).encode())
    return h.hexdigest()


# -- manifests --------------------------------------------------------------------------
def beton_name(dataset: str, dataset_args: dict[str, Any], split: str, fingerprint: str) -> str:
    args = f"-{short_hash(dataset_args, 8)}" if dataset_args else ""
    return f"{dataset}{args}-{split}-{fingerprint[:16]}.beton"


def _manifest_path(beton: Path) -> Path:
    return beton.with_suffix(".json")


def read_manifests(directory: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Every readable manifest in ``directory`` as ``(beton path, manifest)``."""
    out = []
    if not directory.is_dir():
        return out
    for mf in sorted(directory.glob("*.json")):
        try:
            m = json.loads(mf.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(m, dict) and m.get("format") == FORMAT:
            out.append((mf.with_suffix(".beton"), m))
    return out


def _write_json_atomic(path: Path, obj: Any) -> None:
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=True, default=str), encoding="utf-8")
    os.replace(tmp, path)


def quick_sha256(path: Path, size: int) -> str:
    """SHA-256 of the whole file, or of its size + first and last 64 MiB when it is large."""
    if size <= FULL_CHECK_BYTES:
        return sha256_file(path)
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        h.update(f.read(_QUICK_BLOCK))
        f.seek(size - _QUICK_BLOCK)
        h.update(f.read(_QUICK_BLOCK))
    return "quick:" + h.hexdigest()


# -- reading a .beton without the FFCV loader (verification) -----------------------------
def _open_reader(path: Path):
    import_ffcv()
    from ffcv.reader import Reader

    try:
        return Reader(str(path))
    except Exception as e:  # a header/table that does not parse: corrupt or truncated
        raise DatasetError(f"{path} is not a readable .beton ({type(e).__name__}: {e}); "
                           f"delete it and re-run `python -m suite data prepare`") from e


def _layout(reader, path: Path) -> tuple[tuple[int, ...], int]:
    names = list(reader.handlers)
    if names != ["image", "label"]:
        raise DatasetError(f"{path} has fields {names}, not ['image', 'label']: it was not "
                           f"written by `python -m suite data prepare`; delete it and re-run it")
    img = reader.handlers["image"]
    shape = tuple(int(s) for s in img.shape)
    if np.dtype(img.dtype) != np.uint8:
        raise DatasetError(f"{path}: images are {img.dtype}, expected uint8; re-run prepare")
    return shape, int(np.prod(shape))


def content_fingerprint(path: Path) -> tuple[str, int]:
    """Decode every item of a ``.beton`` with numpy (no JIT) and hash it like
    :func:`split_fingerprint` hashes in-memory data; returns ``(sha256, count)``."""
    reader = _open_reader(path)
    shape, nbytes = _layout(reader, path)
    n = int(reader.num_samples)
    ptrs = reader.metadata["f0"].astype(np.int64)
    labels = reader.metadata["f1"].astype(np.int64)
    mm = np.memmap(path, dtype=np.uint8, mode="r")
    if n and (ptrs.min() < 0 or ptrs.max() + nbytes > mm.shape[0]):
        raise DatasetError(f"{path}: item pointers run past the end of the file; it is "
                           f"truncated or corrupt. Delete it and re-run data prepare.")
    h = hashlib.sha256(_header(n, shape))
    for p in ptrs.tolist():
        h.update(mm[p:p + nbytes])
    h.update(labels.tobytes())
    del mm
    return h.hexdigest(), n


def decode_items(path: Path, indices: Iterable[int]) -> list[tuple[np.ndarray, int]]:
    """Selected items of a ``.beton`` as ``(uint8 array, label)``, decoded with numpy."""
    reader = _open_reader(path)
    shape, nbytes = _layout(reader, path)
    mm = np.memmap(path, dtype=np.uint8, mode="r")
    out = []
    for i in indices:
        p = int(reader.metadata["f0"][i])
        out.append((np.array(mm[p:p + nbytes]).reshape(shape), int(reader.metadata["f1"][i])))
    return out


# -- verification -----------------------------------------------------------------------
def verify_beton(path: Path, manifest: dict[str, Any], expected_count: int | None = None,
                 checksum: bool = True) -> None:
    """Check a prepared file against its manifest before anything reads it.

    Raises :class:`DatasetError` naming the problem (missing, truncated, wrong count, wrong
    layout, checksum mismatch) and the fix.
    """
    fix = (f"delete {path.name} (and its .json) and re-run `python -m suite data prepare "
           f"{manifest.get('dataset', 'DATASET')}" + "".join(
               f" --dataset-arg {k}={json.dumps(v)}"
               for k, v in sorted((manifest.get("dataset_args") or {}).items())) + "`")
    if not path.is_file():
        raise DatasetError(f"{path} is listed in its manifest but missing; {fix}")
    size = path.stat().st_size
    if size != manifest.get("size"):
        what = "truncated" if size < manifest.get("size", 0) else "changed"
        raise DatasetError(f"{path} is {what}: {size} bytes, its manifest says "
                           f"{manifest.get('size')}; {fix}")
    reader = _open_reader(path)
    n = int(reader.num_samples)
    if n != manifest.get("count") or (expected_count is not None and n != expected_count):
        raise DatasetError(
            f"{path} holds {n} items, its manifest says {manifest.get('count')}"
            + (f" and the dataset has {expected_count}" if expected_count is not None else "")
            + f": the counts do not match, so it is not this dataset; {fix}")
    shape, _ = _layout(reader, path)
    if list(shape) != list(manifest.get("item_shape", [])):
        raise DatasetError(f"{path} stores items of shape {list(shape)}, its manifest says "
                           f"{manifest.get('item_shape')}; {fix}")
    if checksum:
        got = quick_sha256(path, size)
        if got != manifest.get("sha256"):
            raise DatasetError(f"{path} is corrupt: SHA-256 {got[:12]}…, its manifest says "
                               f"{str(manifest.get('sha256'))[:12]}…; {fix}")


def find_beton(split: Split, provenance: dict[str, Any] | None = None,
               cache_dir: str | os.PathLike | None = None, verify: bool = True
               ) -> tuple[Path | None, dict[str, Any] | None, str]:
    """The prepared ``.beton`` holding exactly ``split``'s data, verified, or ``None``.

    Returns ``(path, manifest, note)``; ``note`` says why none was found (to record as the
    loader choice's reason). A match that fails verification raises :class:`DatasetError`.
    """
    d = beton_dir(cache_dir)
    manifests = read_manifests(d)
    if not manifests:
        return None, None, f"no prepared .beton in {d}"
    n = len(split)
    shape = list(_item(split, 0)[0].shape) if n else []
    cands = [(p, m) for p, m in manifests if m.get("count") == n and m.get("item_shape") == shape]
    if not cands:
        return None, None, f"no prepared .beton in {d} has {n} items of shape {shape}"
    fp = split_fingerprint(split, provenance)
    for p, m in cands:
        if m.get("fingerprint") == fp:
            if verify:
                verify_beton(p, m, expected_count=n)
            return p, m, f"prepared {p.name}"
    names = ", ".join(sorted({f"{m.get('dataset')} {m.get('split')}" for _, m in cands}))
    return None, None, (f"{d} has .beton files with {n} items ({names}) but none of this data "
                        f"(fingerprint {fp[:12]}…): the source changed since it was prepared")


# -- writing ----------------------------------------------------------------------------
class _Items:
    """The split as the ffcv writer wants it: ``(uint8 array, int label)`` per index."""

    def __init__(self, split: Split, shape: tuple[int, ...]):
        self.split, self.shape = split, shape

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        x, y = _item(self.split, int(i))
        if x.dtype != torch.uint8 or tuple(x.shape) != self.shape:
            raise DatasetError(f"item {i} is {x.dtype} {tuple(x.shape)}; every item must be "
                               f"uint8 {self.shape} to be stored in a .beton")
        return np.ascontiguousarray(x.numpy()), y


def _worker(errors, job, *args) -> None:
    try:
        job(*args)
    except BaseException as e:  # report to the parent, which stops the others
        errors.put(f"{type(e).__name__}: {e}\n" + "".join(traceback.format_exc(limit=4)))
        raise SystemExit(1) from None


def _write(fname: Path, split: Split, shape: tuple[int, ...], num_workers: int,
           progress: Progress | None) -> None:
    """ffcv's ``DatasetWriter.from_indexed_dataset``, with progress reported to a callback
    and a failing item stopping the write with its error (ffcv's own loop waits forever)."""
    from ffcv.fields import IntField, NDArrayField
    from ffcv.memory_allocator import MemoryAllocator
    from ffcv.writer import MIN_PAGE_SIZE, DatasetWriter, worker_job_indexed_dataset

    nbytes = int(np.prod(shape))
    page = MIN_PAGE_SIZE  # 2 MiB: each writer process fills whole pages
    while page < 2 * nbytes + 4096:
        page *= 2
    fields = {"image": NDArrayField(np.dtype("uint8"), shape), "label": IntField()}
    w = DatasetWriter(str(fname), fields, page_size=page, num_workers=num_workers)
    n = len(split)
    w.num_samples = n
    w.prepare()
    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
    work, allocs, errors = ctx.Queue(), ctx.Queue(), ctx.Queue()
    chunk = max(1, min(256, n // (4 * num_workers) or 1))
    order = list(enumerate(range(n)))
    for i in range(0, n, chunk):
        work.put(order[i:i + chunk])
    for _ in range(num_workers):
        work.put(None)
    done = ctx.Value(ctypes.c_uint64, 0)
    allocator = MemoryAllocator(str(fname), w.data_region_start, w.page_size)
    args = (work, w.metadata_sm, w.metadata_type, w.fields, allocator, done, allocs,
            _Items(split, shape))
    procs = [ctx.Process(target=_worker, args=(errors, worker_job_indexed_dataset, *args),
                         daemon=True) for _ in range(num_workers)]
    try:
        for p in procs:
            p.start()
        allocation_list: list = []
        finished = 0
        while finished < num_workers:
            try:
                allocation_list.extend(allocs.get(timeout=0.1))
                finished += 1
            except queue.Empty:
                pass
            if progress:
                progress(int(done.value), n)
            failed = [p for p in procs if p.exitcode not in (None, 0)]
            if failed:
                try:
                    msg = errors.get(timeout=1.0)
                except queue.Empty:
                    msg = f"a writer process exited with status {failed[0].exitcode}"
                raise DatasetError(f"writing {fname.name} failed on an item: {msg}")
        for p in procs:
            p.join()
        w.finalize(allocation_list)
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()
                p.join()
        w.metadata_sm.close()
        w.metadata_sm.unlink()
    if progress:
        progress(n, n)


def prepare_split(dataset: str, dataset_args: dict[str, Any], split_name: str, split: Split,
                  provenance: dict[str, Any], cache_dir: str | os.PathLike | None = None,
                  num_workers: int | None = None, force: bool = False,
                  progress: Progress | None = None) -> dict[str, Any]:
    """Write (or confirm) the ``.beton`` of one split; returns its manifest plus
    ``status`` (``written`` / ``rewritten`` / ``up to date``) and ``path``."""
    import_ffcv()
    d = beton_dir(cache_dir)
    d.mkdir(parents=True, exist_ok=True)
    n = len(split)
    if n == 0:
        raise DatasetError(f"{dataset} {split_name} split is empty; nothing to prepare")
    shape = tuple(int(s) for s in _item(split, 0)[0].shape)
    fp = split_fingerprint(split, provenance)
    final = d / beton_name(dataset, dataset_args, split_name, fp)
    mine = [(p, m) for p, m in read_manifests(d) if m.get("dataset") == dataset
            and m.get("dataset_args") == dataset_args and m.get("split") == split_name]
    status = "written"
    for p, m in mine:
        if p == final and m.get("fingerprint") == fp and not force:
            try:
                verify_beton(p, m, expected_count=n)
                return {**m, "status": "up to date", "path": str(p)}
            except DatasetError:
                status = "rewritten (the old file failed verification)"
        elif p != final:
            status = "rewritten (source changed)"

    tmp = final.with_name(f"{final.name}.tmp-{os.getpid()}")
    # a process per 2,000 items at most: each one pads its last page
    workers = max(1, min(num_workers or os.cpu_count() or 1, 8, -(-n // 2000)))
    try:
        _write(tmp, split, shape, workers, progress)
        got_fp, count = _readback_fingerprint(tmp, split, provenance)
        if count != n:
            raise DatasetError(f"{dataset} {split_name}: wrote {count} items but the dataset "
                               f"has {n}; the source changed while it was read, or is broken")
        if got_fp != fp:
            raise DatasetError(f"{dataset} {split_name}: the written .beton decodes to other "
                               f"data than the source (checksum {got_fp[:12]}… vs "
                               f"{fp[:12]}…); nothing was kept")
        size = tmp.stat().st_size
        sha = quick_sha256(tmp, size)
        _manifest_path(final).unlink(missing_ok=True)  # an old manifest never vouches for it
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()
    import ffcv

    manifest = {
        "format": FORMAT, "dataset": dataset, "dataset_args": dataset_args,
        "split": split_name, "count": n, "item_shape": list(shape), "fingerprint": fp,
        "size": size, "sha256": sha, "source": provenance,
        "ffcv": getattr(ffcv, "__version__", "?"),
        "created": datetime.now(timezone.utc).replace(tzinfo=None).isoformat(timespec="seconds"),
    }
    _write_json_atomic(_manifest_path(final), manifest)
    for p, _ in mine:  # stale files of the same dataset/args/split (older source)
        if p != final:
            for f in (p, _manifest_path(p)):
                f.unlink(missing_ok=True)
    return {**manifest, "status": status, "path": str(final)}


def _readback_fingerprint(path: Path, split: Split, provenance) -> tuple[str, int]:
    """Re-hash the written file the way :func:`split_fingerprint` hashes the source."""
    if split.in_memory:
        return content_fingerprint(path)
    reader = _open_reader(path)
    n = int(reader.num_samples)
    if n != len(split):
        return "", n
    ds = split.dataset
    subset = getattr(ds, "indices", None)
    shape, _ = _layout(reader, path)
    extra = {"kind": "dataset", "type": type(ds).__qualname__, "provenance": provenance or {},
             "subset": short_hash(list(map(int, subset)), 32) if subset is not None else None}
    h = hashlib.sha256(_header(n, shape, extra))
    idx = _probe_indices(n)
    for x, y in decode_items(path, idx):
        h.update(x.tobytes())
        h.update(str(y).encode())
    return h.hexdigest(), n


def prepare(dataset: str, dataset_args: dict[str, Any] | None = None,
            cache_dir: str | os.PathLike | None = None, num_workers: int | None = None,
            force: bool = False, on_split: Callable[[str, int], Progress | None] | None = None,
            bundle: DataBundle | None = None) -> list[dict[str, Any]]:
    """Build the registry dataset and write (or confirm) one ``.beton`` per split.

    ``on_split(split_name, n_items)`` may return a progress callback for that split.
    """
    import registry

    import_ffcv()
    args = dict(dataset_args or {})
    name = registry.DATASETS.resolve(dataset)
    if bundle is None:
        bundle = registry.create_dataset(name, **args)
    out = []
    for split_name in SPLITS:
        split = getattr(bundle, split_name)
        cb = on_split(split_name, len(split)) if on_split else None
        t0 = time.perf_counter()
        r = prepare_split(name, args, split_name, split, bundle.provenance, cache_dir,
                          num_workers, force, cb)
        r["seconds"] = time.perf_counter() - t0
        out.append(r)
    return out
