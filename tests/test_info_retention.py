"""The information-retention protocol (tasks/info_retention.py) on hand-made images whose
SSIM and PSNR are known in closed form, and the task end to end on the bundled photographs."""

from __future__ import annotations

import math

import pytest
import torch

pytest.importorskip("skimage")

import registry  # noqa: E402
from suite.specs import RunSpec, TaskContext  # noqa: E402
from tasks import info_retention as ir  # noqa: E402

C1 = (0.01 * 1.0) ** 2  # SSIM's K1 = 0.01 at data_range 1


def test_constant_offset_has_closed_form_ssim_and_psnr() -> None:
    # x = 0.5 everywhere, y = 0.6: MSE = 0.01 -> PSNR = 20 dB exactly; both images are flat, so
    # SSIM's contrast-structure term is C2 / C2 = 1 and SSIM = its luminance term.
    x = torch.full((3, 32, 32), 0.5, dtype=torch.float64)
    y = x + 0.1
    ssim, psnr = ir.score(x, y)
    assert psnr == pytest.approx(20.0, abs=1e-9)
    assert ssim == pytest.approx((2 * 0.5 * 0.6 + C1) / (0.5**2 + 0.6**2 + C1), abs=1e-9)


def test_identical_images_score_one_and_the_psnr_cap() -> None:
    x = torch.rand(1, 24, 24, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert ir.score(x, x.clone()) == (pytest.approx(1.0), ir.PSNR_CAP)


def _checkerboard(n: int = 12) -> torch.Tensor:
    """A 0/1 pixel checkerboard: every 2×2 window holds two 0s and two 1s."""
    i = torch.arange(n)
    return ((i[:, None] + i[None, :]) % 2).double()[None]


@pytest.mark.parametrize("pool,level", [
    ("avg", 0.5),                                 # the window mean
    ("max", 1.0),                                 # the window max
    ("softpool", math.e / (1 + math.e)),          # (2·e·1 + 2·1·0) / (2e + 2)
])
def test_checkerboard_reconstruction_and_psnr(pool: str, level: float) -> None:
    img = _checkerboard()
    rec = ir.reconstruct(img, ir.make_pool(pool, 2), 2, "nearest")
    assert torch.allclose(rec, torch.full_like(img, level), atol=1e-12)
    mse = 0.5 * (level**2 + (1 - level) ** 2)  # half the pixels are 0, half are 1
    _, psnr = ir.score(img, rec)
    assert psnr == pytest.approx(10 * math.log10(1 / mse), abs=1e-9)


def test_values_are_clipped_and_cropped_to_whole_windows() -> None:
    img = torch.ones(1, 7, 8, dtype=torch.float64)
    crop = ir.crop_to_multiple(img, 3)
    assert crop.shape == (1, 6, 6)
    rec = ir.reconstruct(crop, ir.make_pool("lp", 3), 3)  # sum of 9 ones -> 3, clipped to 1
    assert rec.max().item() == 1.0


def test_scale_moves_softpool_from_mean_towards_max() -> None:
    img = _checkerboard()
    lo = ir.reconstruct(img, ir.make_pool("softpool", 2), 2, scale=1.0).mean().item()
    hi = ir.reconstruct(img, ir.make_pool("softpool", 2), 2, scale=255.0).mean().item()
    assert 0.5 < lo < hi <= 1.0 and hi == pytest.approx(1.0)


def _spec(seed: int, **params) -> RunSpec:
    return RunSpec(claim_id="t", tier="smoke", arm="treatment", seed=seed, task="info_retention",
                   model="", dataset="sample_photos", dataset_args={"crop": 48, "test_subset": 4},
                   params={"shards": 2, **params})


def test_task_on_photo_shards() -> None:
    res = ir.run(_spec(1), TaskContext(device="cpu"))
    m = res.metrics
    assert m["items"] == 2.0  # items 1 and 3 of 4
    for k in (2, 3):
        for pool in ir.DEFAULT_POOLS:
            assert 0.0 < m[f"k{k}.ssim.{pool}"] <= 1.0
        d = m[f"k{k}.ssim.softpool_minus_max"]
        assert d == pytest.approx(m[f"k{k}.ssim.softpool"] - m[f"k{k}.ssim.max"])
    assert {r["item"] for r in res.artifacts["scores"]} == {1, 3}
    assert res.artifacts["panel"]["media_type"] == "image/png"
    assert res.artifacts["panel_order"] == ["original", *ir.DEFAULT_POOLS]


@pytest.mark.parametrize("params,match", [
    ({"pools": ["max", "lip", "softpool"]}, "random projection"),
    ({"pools": ["max", "avg"]}, "must include 'softpool'"),
    ({"pools": ["softpol"]}, "Did you mean"),
    ({"upsample": "area"}, "upsample"),
    ({"kernels": [1]}, "kernels"),
    ({"shard": 2}, "unknown params"),
])
def test_bad_params_are_named(params: dict, match: str) -> None:
    with pytest.raises((ValueError, KeyError), match=match):
        ir.resolve_params(params)


def test_seed_outside_the_shards_is_refused() -> None:
    with pytest.raises(ValueError, match="seeds are 0..1"):
        ir.run(_spec(2), TaskContext(device="cpu"))


def test_sample_photos_are_native_crops() -> None:
    b = registry.create_dataset("sample_photos", crop=96)
    assert b.test.x.shape == (12, 3, 96, 96) and b.test.x.dtype == torch.uint8
    assert len(set(b.provenance["files"])) == 12
    # no file is an upscaled copy: 2×2 average pooling + nearest upsampling is never lossless
    for img in b.test.x.double() / 255:
        assert ir.score(img, ir.reconstruct(img, ir.make_pool("avg", 2), 2))[1] < 60


def test_missing_image_folder_names_the_fix(tmp_path) -> None:
    from registry.datasets.base import DatasetError

    with pytest.raises(DatasetError, match="DIV2K_valid_HR"):
        registry.create_dataset("div2k", root=str(tmp_path))
