"""CNN widths / input downsampling, the same CNN inside the ETN, and old-config loading."""

import pytest
import torch

import symformer
from symformer.checkpoint import save
from symformer.groups import Cyclic
from symformer.models import create, spec
from symformer.testing import assert_equivariant

CFG = {"image_size": 32, "widths": [4, 8, 8], "downsample": 2, "dropout": 0.1}


def test_widths_and_downsample_shapes(dtype):
    m = create("cnn", **CFG).to(dtype).eval()
    x = torch.rand(3, 1, 32, 32, dtype=dtype)
    assert m(x).shape == (3, 10) and m.head.in_features == 8
    convs = [c for c in m.features if isinstance(c, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [4, 8, 8]
    assert isinstance(m.features[0], torch.nn.AvgPool2d)


def test_downsample_is_average_pooling():
    # a 2x2-constant image gives the same logits as its half-size version without pooling
    small = create("cnn", image_size=16, widths=[4, 8]).eval()
    big = create("cnn", image_size=32, widths=[4, 8], downsample=2).eval()
    for a, b in zip(*[[m for m in net.modules() if isinstance(m, (torch.nn.Conv2d,
                       torch.nn.BatchNorm2d, torch.nn.Linear))] for net in (small, big)]):
        b.load_state_dict(a.state_dict())
    x = torch.rand(2, 1, 16, 16, dtype=torch.float64)
    small, big = small.double(), big.double()
    up = x.repeat_interleave(2, -1).repeat_interleave(2, -2)
    torch.testing.assert_close(big(up), small(x))


def test_default_config_keeps_old_layout():
    m = create("cnn", channels=6, depth=2)
    assert [k for k in m.state_dict() if k.endswith("weight")] == [
        "features.0.weight", "features.1.weight", "features.4.weight", "features.5.weight",
        "head.weight"]


def test_etn_uses_the_same_cnn_and_stays_c4_exact(dtype):
    cfg = dict(CFG, transforms=["rotation", "scale"], grid=8, pose_channels=4, pose_depth=1)
    etn = create("etn", **cfg).to(dtype).eval()
    cnn = create("cnn", **CFG)
    assert ({k.removeprefix("cnn."): v.shape for k, v in etn.state_dict().items()
             if k.startswith("cnn.")} == {k: v.shape for k, v in cnn.state_dict().items()})
    assert spec("etn").make_group(etn) == Cyclic(4) or isinstance(
        spec("etn").make_group(etn), Cyclic)
    x = torch.rand(2, 1, 32, 32, dtype=dtype, generator=torch.Generator().manual_seed(0))
    errs = assert_equivariant(etn, spec("etn").make_group(etn), {"image": x},
                              spec("etn").in_types, spec("etn").out_types, n_samples=3)
    assert all(e < (1e-12 if dtype == torch.float64 else 1e-5) for e in errs.values()), errs


@pytest.mark.parametrize("bad", [{"widths": []}, {"widths": [4, 0]}, {"widths": "8"},
                                 {"downsample": 3}, {"downsample": 0}])
def test_config_errors(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        create("cnn", **dict({"image_size": 32}, **bad))


def test_checkpoint_round_trip(tmp_path):
    m = create("etn", **dict(CFG, transforms=["rotation"], grid=8)).eval()
    loaded = symformer.load(save(m, tmp_path / "etn.pt"))
    x = torch.rand(2, 1, 32, 32)
    torch.testing.assert_close(loaded(image=x), m(x))
