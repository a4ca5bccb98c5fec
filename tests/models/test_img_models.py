"""Image classifiers: exact symmetries, baselines that break them, inputs, checkpoints."""

import pytest
import torch

import symformer
from symformer.checkpoint import save
from symformer.groups import CyclicShift, Octic
from symformer.models import create, spec
from symformer.testing import assert_equivariant, equivariance_error

IMAGE_MODELS = ["vit", "octic_vit", "polyphase_vit", "p4m_cnn", "cnn", "etn"]


def _inputs(name, dtype, seed=0, batch=2):
    m = create(name).to(dtype).eval()
    x = torch.rand(batch, 1, 28, 28, generator=torch.Generator().manual_seed(seed), dtype=dtype)
    return m, x


@pytest.mark.parametrize("name", ["octic_vit", "p4m_cnn", "polyphase_vit", "etn"])
def test_declared_symmetry_is_exact(name, dtype):
    m, x = _inputs(name, dtype)
    s = spec(name)
    errs = assert_equivariant(m, s.make_group(m), {"image": x}, s.in_types, s.out_types,
                              n_samples=3)
    assert all(e < (1e-12 if dtype == torch.float64 else 1e-5) for e in errs.values()), errs


@pytest.mark.parametrize("name, group", [("vit", Octic()), ("cnn", Octic()),
                                         ("vit", CyclicShift(28, 28)), ("etn", Octic())])
def test_baselines_are_not_invariant(name, group):
    # the harness can fail: models without the symmetry show order-one errors
    m, x = _inputs(name, torch.float64)
    errs = equivariance_error(m, group, {"image": x}, {"image": "image"}, "scalar",
                              n_samples=3)
    assert max(errs.values()) > 1e-3, errs


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_batch_matches_single_and_shapes(name):
    m, x = _inputs(name, torch.float64, batch=3)
    out = m(x)
    assert out.shape == (3, 10) and out.dtype == torch.float64
    torch.testing.assert_close(m(x[1:2]), out[1:2])


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_input_errors(name):
    m = create(name)
    with pytest.raises(TypeError, match="floating"):
        m(torch.zeros(1, 1, 28, 28, dtype=torch.uint8))
    with pytest.raises(ValueError, match="shape"):
        m(torch.zeros(1, 28, 28))
    with pytest.raises(ValueError, match="28x28"):
        m(torch.zeros(1, 1, 32, 32))
    bad = torch.zeros(1, 1, 28, 28)
    bad[0, 0, 3, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        m(bad)


def test_config_errors():
    with pytest.raises(ValueError, match="divisible"):
        create("octic_vit", image_size=30, patch=4)
    with pytest.raises(ValueError, match="heads"):
        create("octic_vit", copies=4, heads=3)
    with pytest.raises(TypeError, match="transforms"):
        create("etn", transforms="rotation")
    with pytest.raises(ValueError, match="kind"):
        create("etn", transforms=["affine"])


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_checkpoint_round_trip(name, tmp_path):
    m = create(name).eval()
    path = save(m, tmp_path / f"{name}.pt", extra={"test_acc": 0.5})
    loaded = symformer.load(path)
    x = torch.rand(2, 1, 28, 28)
    torch.testing.assert_close(loaded(image=x), m(x))
    assert loaded.checkpoint_extra["test_acc"] == 0.5


@pytest.mark.parametrize("name", ["polyphase_vit"])
def test_compile_smoke(name):
    m = create(name).eval()
    x = torch.rand(2, 1, 28, 28)
    torch.testing.assert_close(torch.compile(m, backend="eager")(x), m(x))


def test_octic_vit_learns_a_tiny_task():
    # 32 images, two classes that differ by brightness; the loss must drop
    torch.manual_seed(0)
    m = create("octic_vit", copies=2, depth=1, heads=1)
    x = torch.rand(32, 1, 28, 28)
    y = torch.arange(32) % 2
    x = x * (0.3 + 0.7 * y[:, None, None, None])
    opt = torch.optim.Adam(m.parameters(), lr=3e-2)
    losses = []
    for _ in range(40):
        loss = torch.nn.functional.cross_entropy(m(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]
