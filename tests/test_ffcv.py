"""FFCV data path: `data prepare` writes verified .beton files, the FFCV loader yields the
tensor path's batches, a mini claim trains through it end to end, and bad files or sources
give a clear DatasetError. Needs the ffcv extra (skipped without it)."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
from pathlib import Path

import pytest
import torch

from registry.datasets import beton
from registry.datasets.base import DatasetError, Split

if importlib.util.find_spec("ffcv") is None:  # decided without the 10-20 s import
    pytest.skip("needs the ffcv extra: pip install 'poolrepro[ffcv]'", allow_module_level=True)

pytestmark = pytest.mark.ffcv
SYN = {"train_size": 300, "test_size": 100, "size": 16, "num_classes": 4}


@pytest.fixture(scope="module", autouse=True)
def ffcv_imported():
    threads = torch.get_num_threads()
    pytest.importorskip("ffcv")
    beton.import_ffcv()
    torch.set_num_threads(threads)  # importing ffcv sets torch's threads to 1


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "beton"
    monkeypatch.setenv(beton.CACHE_ENV, str(d))
    return d


def _spec(dataset: str, dataset_args: dict, loader: str, **params):
    from suite.specs import RunSpec

    p = {"epochs": 2, "batch_size": 50, "lr": 0.05, "loader": loader,
         "augment": {"crop_padding": 2, "flip": True}, **params}
    return RunSpec(claim_id="t/ffcv", tier="mini", arm="treatment", seed=0, task="train_eval",
                   model="test_cnn", dataset=dataset, model_args={"width": 8},
                   dataset_args=dataset_args, params=p, device="cpu")


def _fmnist_available() -> bool:
    import registry

    try:
        registry.create_dataset("fashion_mnist_32", train_subset=10, test_subset=10)
        return True
    except DatasetError:
        return False


# -- prepare ------------------------------------------------------------------------------
def test_prepare_verifies_and_rewrites_only_when_the_source_changes(cache):
    import registry

    first = beton.prepare("synthetic", SYN)
    assert [r["status"] for r in first] == ["written", "written"]
    bundle = registry.create_dataset("synthetic", **SYN)
    for r, split in zip(first, (bundle.train, bundle.test), strict=True):
        path = Path(r["path"])
        assert path.is_file() and path.with_suffix(".json").is_file()
        assert r["count"] == len(split) and r["item_shape"] == [3, 16, 16]
        assert r["fingerprint"] == beton.split_fingerprint(split)
        assert beton.content_fingerprint(path) == (r["fingerprint"], len(split))
        (x0, y0), = beton.decode_items(path, [7])
        assert torch.equal(torch.from_numpy(x0), split.x[7]) and y0 == int(split.y[7])
    assert not list(cache.glob("*.tmp*"))  # nothing half-written left behind

    again = beton.prepare("synthetic", SYN)
    assert [r["status"] for r in again] == ["up to date", "up to date"]
    assert [r["sha256"] for r in again] == [r["sha256"] for r in first]

    # same name and args, different data (the source changed): rewritten, stale file gone
    changed = dataclasses.replace(bundle, train=Split(bundle.train.x.flip(-1),
                                                      bundle.train.y))
    third = beton.prepare("synthetic", SYN, bundle=changed)
    assert third[0]["status"].startswith("rewritten") and third[1]["status"] == "up to date"
    assert not Path(first[0]["path"]).exists()
    assert len(list(cache.glob("*.beton"))) == 2


def test_cli_data_prepare_and_ls(cache, capsys):
    from suite.cli import main

    assert main(["data", "prepare", "synthetic", "--no-progress", "--cache-dir", str(cache),
                 *[a for k, v in SYN.items() for a in ("-a", f"{k}={v}")]]) == 0
    assert "written" in capsys.readouterr().out
    assert main(["data", "ls", "--verify", "--cache-dir", str(cache)]) == 0
    assert capsys.readouterr().out.count("ok") >= 2
    assert main(["data", "prepare", "synthetic", "-a", "bogus=1", "--no-progress"]) == 2
    assert "bogus" in capsys.readouterr().err
    assert main(["data", "prepare", "nosuchset", "--no-progress"]) == 2


def test_missing_source_path_is_a_clear_error(cache, tmp_path, capsys):
    from suite.cli import main

    missing = tmp_path / "no-such-dir"
    with pytest.raises(DatasetError, match="not found"):
        beton.prepare("fashion_mnist_32", {"root": str(missing)})
    assert main(["data", "prepare", "fmnist32", "-a", f"root={missing}", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "not found" in err and "dataset-fashion-mnist" in err
    assert not list(cache.glob("*.beton"))


@pytest.mark.parametrize("stage", ["fingerprint", "writer"])
def test_a_failing_item_stops_the_write_and_leaves_nothing(cache, stage):
    probed = beton._probe_indices(40)  # items the fingerprint reads; the writer reads all
    bad = probed[1] if stage == "fingerprint" else min(set(range(40)) - set(probed))

    class Broken(torch.utils.data.Dataset):
        def __len__(self):
            return 40

        def __getitem__(self, i):
            if i == bad:
                raise OSError(f"image {i} is unreadable")
            return torch.zeros(3, 8, 8, dtype=torch.uint8), 0

    with pytest.raises(DatasetError, match=f"image {bad} is unreadable"):
        beton.prepare_split("broken", {}, "train", Split(None, None, Broken()), {})
    assert not list(cache.iterdir())


def test_item_decoding_datasets_are_prepared_and_found(cache):
    from tasks.ffcv_loader import choose_loader

    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (50, 3, 2, 8, 8), dtype=torch.uint8, generator=g)  # video items
    split = Split(None, None, torch.utils.data.TensorDataset(x, torch.arange(50) % 5))
    prov = {"source": "/data/videos", "frames": 2}
    r = beton.prepare_split("clips", {"frames": 2}, "train", split, prov)
    assert r["status"] == "written" and r["item_shape"] == [3, 2, 8, 8]
    (x9, y9), = beton.decode_items(Path(r["path"]), [9])
    assert torch.equal(torch.from_numpy(x9), x[9]) and y9 == 4
    kind, reason, path = choose_loader("auto", split, prov)
    assert (kind, str(path)) == ("ffcv", r["path"])
    kind, reason, _ = choose_loader("auto", split, {**prov, "source": "/elsewhere"})
    assert kind == "torch" and "source changed" in reason


def test_cifar_from_a_users_path(cache, tmp_path):
    import pickle

    import numpy as np

    d = tmp_path / "data" / "cifar-10-batches-py"
    d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, n in [*((f"data_batch_{i}", 20) for i in range(1, 6)), ("test_batch", 30)]:
        with open(d / name, "wb") as f:
            pickle.dump({b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                         b"labels": [i % 10 for i in range(n)]}, f)
    args = {"root": str(tmp_path / "data"), "allow_partial": True}
    out = beton.prepare("cifar_10", args)
    assert [(r["dataset"], r["split"], r["count"]) for r in out] == [
        ("cifar10", "train", 100), ("cifar10", "test", 30)]
    with pytest.raises(DatasetError, match="expected 50000"):  # the count check holds
        beton.prepare("cifar10", {"root": str(tmp_path / "data")})


# -- bad files ----------------------------------------------------------------------------
@pytest.fixture
def prepared(cache):
    import registry

    out = beton.prepare("synthetic", SYN)
    return registry.create_dataset("synthetic", **SYN), Path(out[0]["path"]), out


def test_truncated_corrupt_or_miscounted_beton_is_refused(prepared):
    from tasks.ffcv_loader import choose_loader

    bundle, path, out = prepared
    good = path.read_bytes()
    manifest = json.loads(path.with_suffix(".json").read_text())

    path.write_bytes(good[: len(good) // 2])
    for choice in ("ffcv", "auto"):  # auto never falls back silently past a bad file
        with pytest.raises(DatasetError, match="truncated"):
            choose_loader(choice, bundle.train)

    bad = bytearray(good)
    ptr = int(beton._open_reader(Path(out[1]["path"])).metadata["f0"][0])  # a data byte
    bad[ptr] ^= 0xFF
    path.write_bytes(bytes(bad))
    with pytest.raises(DatasetError, match="corrupt"):
        choose_loader("ffcv", bundle.train)

    # another valid .beton in its place (the test split: 100 items, not 300), manifest
    # size and checksum made to match: the count still gives it away
    other = Path(out[1]["path"]).read_bytes()
    path.write_bytes(other)
    m = {**manifest, "size": len(other), "sha256": beton.quick_sha256(path, len(other))}
    path.with_suffix(".json").write_text(json.dumps(m))
    with pytest.raises(DatasetError, match="counts do not match"):
        choose_loader("ffcv", bundle.train)

    path.unlink()
    with pytest.raises(DatasetError, match="missing"):
        choose_loader("ffcv", bundle.train)

    # a file without its manifest (killed between rename and manifest) is never used
    path.write_bytes(good)
    path.with_suffix(".json").unlink()
    assert choose_loader("auto", bundle.train)[0] == "tensor"


def test_forced_ffcv_without_a_prepared_file_says_how_to_prepare(cache):
    import registry
    from tasks.ffcv_loader import choose_loader

    bundle = registry.create_dataset("synthetic", **SYN)
    with pytest.raises(DatasetError, match="data prepare"):
        choose_loader("ffcv", bundle.train)
    kind, reason, _ = choose_loader("auto", bundle.train)
    assert kind == "tensor" and "no prepared .beton" in reason


# -- the loader ---------------------------------------------------------------------------
def test_ffcv_batches_match_the_tensor_path_and_both_learn(prepared):
    import registry
    from tasks.augment import AugmentSpec, augment_batch
    from tasks.ffcv_loader import FFCVLoader
    from tasks.train_eval import TensorLoader

    bundle, path, _ = prepared
    ff = FFCVLoader(path, 64, shuffle=True, seed=3, drop_last=True)
    tl = TensorLoader(bundle.train, 64, shuffle=True, seed=3, drop_last=True)
    assert len(ff) == len(tl) == 300 // 64

    def epoch(loader):
        xs, ys = zip(*[(x.clone(), y.clone()) for x, y in loader], strict=True)
        return torch.cat(xs), torch.cat(ys)

    for _ in range(2):  # two epochs: each draws a new permutation from the same generator
        (xf, yf), (xt, yt) = epoch(ff), epoch(tl)
        assert xf.dtype == torch.uint8 and yf.dtype == torch.int64
        assert torch.bincount(yf, minlength=4).tolist() == torch.bincount(yt, minlength=4).tolist()
        assert xf.float().mean() == pytest.approx(xt.float().mean().item(), rel=1e-6)
        assert xf.float().std() == pytest.approx(xt.float().std().item(), rel=1e-6)
        assert torch.equal(xf, xt) and torch.equal(yf, yt)  # same order, same pixels

    aug = AugmentSpec(crop_padding=2, flip=True)
    for loader in (ff, tl):
        torch.manual_seed(0)
        model = registry.create_model("test_cnn", num_classes=4, in_chans=3, width=8)
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        g, losses = torch.Generator().manual_seed(0), []
        for _ in range(3):
            for xb, yb in loader:
                x = augment_batch(xb, aug, g, bundle.mean, bundle.std)
                loss = torch.nn.functional.cross_entropy(model(x), yb)
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(loss.item())
        assert sum(losses[-4:]) < sum(losses[:4]), losses


@pytest.mark.slow
def test_mini_claim_trains_through_ffcv_end_to_end(cache):
    from suite.cli import main
    from suite.worker import execute

    if not _fmnist_available():
        pytest.skip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    args = {"train_subset": 400, "test_subset": 200}
    assert main(["data", "prepare", "fashion_mnist_32", "--no-progress",
                 "-a", "train_subset=400", "-a", "test_subset=200"]) == 0

    ffcv_run = execute(_spec("fmnist32", args, "auto"), emit=lambda *a, **k: None)
    assert ffcv_run["status"] == "ok", ffcv_run["message"]
    prov = ffcv_run["provenance"]
    assert prov["loader"] == "ffcv" and "prepared" in prov["loader_reason"]
    assert prov["loaders"] == {"train": "ffcv", "eval": "ffcv"}
    loss = ffcv_run["series"]["train_loss"]
    assert loss[-1] < loss[0]

    tensor_run = execute(_spec("fmnist32", args, "tensor"), emit=lambda *a, **k: None)
    assert tensor_run["provenance"]["loader"] == "tensor"
    # switching loaders changes speed, not the recipe: the same numbers on a CPU
    assert tensor_run["series"]["train_loss"] == pytest.approx(loss, rel=1e-5)
    assert tensor_run["metrics"]["top1"] == pytest.approx(ffcv_run["metrics"]["top1"])

    # other args (a different subset) were not prepared: ffcv refuses, auto falls back
    other = {"train_subset": 300, "test_subset": 200}
    r = execute(_spec("fmnist32", other, "ffcv"), emit=lambda *a, **k: None)
    assert r["status"] == "skipped" and "data prepare" in r["message"]
    r = execute(_spec("fmnist32", other, "auto", epochs=1), emit=lambda *a, **k: None)
    assert r["status"] == "ok" and r["provenance"]["loader"] == "tensor"
    assert "no prepared .beton" in r["provenance"]["loader_reason"]


@pytest.mark.slow
def test_loader_bench_reports_ratios(cache):
    from suite.specs import RunSpec
    from suite.worker import execute

    spec = RunSpec(claim_id="bench/loader", tier="smoke", arm="treatment", seed=0,
                   task="loader_bench", model="test_cnn", dataset="synthetic",
                   model_args={"width": 4}, dataset_args={**SYN, "train_size": 256},
                   params={"batch_size": 64, "passes": 1, "train_steps": 2, "workers": 1},
                   device="cpu")
    r = execute(spec, emit=lambda *a, **k: None)
    assert r["status"] == "ok", r["message"]
    m = r["metrics"]
    for k in ("ffcv_ips", "torch_ips", "tensor_ips", "train_ffcv_ips", "train_model_only_ips"):
        assert m[k] > 0
    assert m["ffcv_vs_torch"] == pytest.approx(m["ffcv_ips"] / m["torch_ips"])
    assert r["provenance"]["loader_bench"]["items"] == 256
    assert m["repeats"] == 1 and m["train_repeats"] == 5  # stated in the verdict
    assert "interleaved" in r["provenance"]["loader_bench"]["timing"]
