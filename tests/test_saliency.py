"""FullGrad (tasks/saliency.py): completeness on the S3Net/DenseNet/ResNet families, agreement
with pytorch-grad-cam's FullGrad (optional extra `saliency-check`), the localisation and
deletion/insertion scores on inputs with known answers, and the cluttered dataset's masks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import registry
from registry.datasets.base import DatasetError
from tasks import saliency

pytestmark = pytest.mark.usefixtures("one_thread")

MODELS = [("s3net_cifar", {"growth_rate": 4, "depth": 10}),
          ("cifar_densenet", {"growth_rate": 4, "depth": 10}),
          ("cifar_resnet_thin", {"depth": 8, "width": 0.25})]


def _model(name: str, args: dict, seed: int = 0) -> nn.Module:
    """A small registry model in eval mode whose BatchNorms have non-trivial statistics and
    affine parameters (so every implicit bias matters)."""
    torch.manual_seed(seed)
    m = registry.create_model(name, num_classes=10, in_chans=3, **args)
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.5, 2.0)
            mod.weight.data.uniform_(0.5, 1.5)
            mod.bias.data.uniform_(-0.3, 0.3)
    return m.eval()


@pytest.mark.parametrize("name,args", MODELS, ids=[m for m, _ in MODELS])
def test_fullgrad_completeness(name, args):
    """f(x) = ∇ₓf·x + Σ ∇_b f·b (Srinivas & Fleuret 2019, Eq. 2): exact for these ReLU nets."""
    m = _model(name, args)
    x = torch.randn(4, 3, 32, 32)
    y = torch.tensor([0, 3, 5, 9])
    f, inp, terms = saliency.fullgrad_decompose(m, x, y)
    total = inp.flatten(1).sum(1) + sum(t.flatten(1).sum(1) for t in terms)
    torch.testing.assert_close(total, f, rtol=1e-4, atol=1e-4)
    assert torch.equal(f, m(x).gather(1, y[:, None]).squeeze(1).detach())
    # every BatchNorm and the linear head contribute a bias term
    n_bias = sum(isinstance(mod, (nn.BatchNorm2d, nn.Linear)) for mod in m.modules())
    assert len(terms) == n_bias
    # the in-place ReLUs are restored afterwards
    assert any(getattr(mod, "inplace", False) for mod in m.modules())


def test_fullgrad_needs_eval_mode():
    m = _model(*MODELS[0]).train()
    with pytest.raises(ValueError, match="eval mode"):
        saliency.fullgrad_decompose(m, torch.randn(1, 3, 32, 32), torch.tensor([0]))


def test_fullgrad_map_shape_and_range():
    m = _model(*MODELS[0])
    s = saliency.fullgrad(m, torch.randn(3, 3, 32, 32), torch.tensor([1, 2, 3]))
    assert s.shape == (3, 32, 32) and (s >= 0).all() and torch.isfinite(s).all()
    with pytest.raises(ValueError, match="scale"):
        saliency.fullgrad(m, torch.randn(1, 3, 32, 32), torch.tensor([1]), scale="layer")


@pytest.mark.parametrize("name,args", MODELS, ids=[m for m, _ in MODELS])
def test_fullgrad_matches_pytorch_grad_cam(name, args):
    """Same model, same input, same class: our FullGrad with pytorch-grad-cam's conventions
    (per-channel rescaling, OpenCV-style resize, final min-max) equals its ``FullGrad``."""
    try:
        from pytorch_grad_cam import FullGrad
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    except Exception as e:
        pytest.skip(f"pytorch-grad-cam is not importable ({type(e).__name__}: {e}); install "
                    f"the extra: pip install -e '.[saliency-check]'")
    m = _model(name, args)
    x = torch.randn(2, 3, 32, 32)
    y = torch.tensor([4, 7])
    ours = saliency.fullgrad(m, x, y, scale="channel", align_corners=False)
    lo = ours.flatten(1).min(1).values[:, None, None]
    ours = (ours - lo) / (ours.flatten(1).max(1).values[:, None, None] - lo + 1e-7)
    with saliency.no_inplace(m):
        cam = FullGrad(model=m, target_layers=[])
        ref = cam(input_tensor=x.clone(), targets=[ClassifierOutputTarget(int(c)) for c in y])
    torch.testing.assert_close(ours, torch.as_tensor(ref), rtol=0, atol=1e-4)


def test_energy_in_mask_known_answer():
    """A map of 3 on a 10-pixel object and 1 on the other 90 pixels puts 30/120 = 0.25 of
    its energy on the object; a uniform map puts the object's area share there."""
    mask = torch.zeros(2, 10, 10, dtype=torch.bool)
    mask[:, 0, :] = True
    sal = torch.ones(2, 10, 10)
    sal[0][mask[0]] = 3.0
    share = saliency.energy_in_mask(sal, mask)
    assert share[0].item() == pytest.approx(0.25)
    assert share[1].item() == pytest.approx(0.10)
    perfect = mask.float()
    assert saliency.energy_in_mask(perfect, mask).tolist() == pytest.approx([1.0, 1.0])


class _Counter(nn.Module):
    """Logit of class 0 = 8 · (mean of the top half's pixels) − 4: the class-0 probability
    only depends on the top half of the image."""

    def forward(self, x):
        z = 8 * x[:, :, : x.shape[2] // 2].mean((1, 2, 3)) - 4
        return torch.stack([z, torch.zeros_like(z)], 1)


def test_deletion_insertion_rank_the_right_map_first():
    x = torch.ones(1, 1, 8, 8)
    good = torch.zeros(1, 8, 8)
    good[:, :4] = 1 + torch.rand(1, 4, 8)  # the pixels that matter, first
    bad = 1 - good  # the same pixels, last
    base = torch.zeros(1, 1, 1, 1)
    t = torch.tensor([0])
    d_good, i_good = saliency.deletion_insertion(_Counter(), x, good, t, base, steps=8)
    d_bad, i_bad = saliency.deletion_insertion(_Counter(), x, bad, t, base, steps=8)
    assert d_good.item() < d_bad.item() and i_good.item() > i_bad.item()
    # known end points: all kept -> p = σ(4), all deleted -> p = σ(-4); AUCs lie between
    lo, hi = torch.sigmoid(torch.tensor(-4.0)).item(), torch.sigmoid(torch.tensor(4.0)).item()
    for v in (d_good, i_good, d_bad, i_bad):
        assert lo - 1e-6 <= v.item() <= hi + 1e-6


def test_cluttered_fashion_masks_cover_the_item():
    try:
        b = registry.create_dataset("cluttered_fashion", train_subset=40, test_subset=20)
    except DatasetError as e:
        pytest.skip(str(e))
    assert b.test.x.shape == (20, 3, 32, 32) and b.test.mask.shape == (20, 32, 32)
    m = b.test.mask
    assert 0.05 < m.float().mean() < 0.5
    # every masked pixel is lit; the item's silhouette fits in a 20 x 20 box
    assert (b.test.x[:, 0][m] > 0).all()
    for i in range(len(m)):
        rows, cols = m[i].any(1).nonzero(), m[i].any(0).nonzero()
        assert rows.max() - rows.min() < 20 and cols.max() - cols.min() < 20
    again = registry.create_dataset("cluttered_fashion", train_subset=40, test_subset=20)
    assert torch.equal(again.test.x, b.test.x) and torch.equal(again.test.mask, m)


def test_task_end_to_end_on_a_tiny_run(tmp_path):
    try:
        registry.create_dataset("cluttered_fashion", train_subset=40, test_subset=20)
    except DatasetError as e:
        pytest.skip(str(e))
    from suite.specs import RunSpec, TaskContext

    spec = RunSpec(claim_id="t", tier="smoke", arm="treatment", seed=0, task="saliency",
                   model="s3net_cifar", dataset="cluttered_fashion",
                   model_args={"growth_rate": 2, "depth": 10},
                   dataset_args={"train_subset": 40, "test_subset": 20},
                   params={"epochs": 1, "batch_size": 20, "lr": 0.05,
                           "saliency": {"n_images": 8, "steps": 4, "n_figure": 2}})
    res = saliency.run(spec, TaskContext(device="cpu"))
    m = res.metrics
    assert {"top1", "loc_energy", "loc_gain", "deletion_auc", "insertion_auc"} <= set(m)
    assert 0 <= m["loc_energy"] <= 1 and m["completeness_err"] < 1e-3
    assert res.artifacts["saliency_png"]["media_type"] == "image/png"
    with pytest.raises(ValueError, match="unknown params.saliency"):
        saliency.resolve_saliency({"saliency": {"n_img": 3}})
