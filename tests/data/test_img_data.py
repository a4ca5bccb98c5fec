"""MNIST idx reader and the transformed variants (projective, rotated, shifted)."""

import gzip
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from symformer.data.image_variants import (load_image_dataset, projective_matrix,
                                           projective_params, rotate_images, warp_images)
from symformer.data.mnist import load_mnist, read_idx

FIXTURE = Path(__file__).parents[1] / "fixtures" / "mnist_small.npz"


def _idx_bytes(arr: np.ndarray) -> bytes:
    code = 0x08
    header = bytes([0, 0, code, arr.ndim]) + b"".join(int(d).to_bytes(4, "big")
                                                     for d in arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def write_mnist_root(folder: Path) -> Path:
    """The committed few hundred digits as a gzipped idx folder."""
    data = np.load(FIXTURE)
    folder.mkdir(parents=True, exist_ok=True)
    for stem, key in (("train-images-idx3-ubyte", "train_images"),
                      ("train-labels-idx1-ubyte", "train_labels"),
                      ("t10k-images-idx3-ubyte", "test_images"),
                      ("t10k-labels-idx1-ubyte", "test_labels")):
        with gzip.open(folder / f"{stem}.gz", "wb") as f:
            f.write(_idx_bytes(data[key]))
    return folder


def test_read_idx_round_trip_and_load(tmp_path):
    root = write_mnist_root(tmp_path / "mnist")
    x, y = load_mnist("train", root=root)
    data = np.load(FIXTURE)
    assert x.shape == (300, 28, 28) and x.dtype == torch.uint8 and y.dtype == torch.int64
    np.testing.assert_array_equal(x.numpy(), data["train_images"])
    xt, _ = load_mnist("test", root=root)
    assert xt.shape == (100, 28, 28)


@pytest.mark.parametrize("payload, match", [
    (b"\x01\x02\x08\x01\x00\x00\x00\x01\x05", "magic"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x05\x01\x02", "header says"),
    (b"\x00\x00\x42\x01\x00\x00\x00\x01\x05", "type code"),
])
def test_read_idx_errors_name_the_file(tmp_path, payload, match):
    path = tmp_path / "broken-idx1-ubyte"
    path.write_bytes(payload)
    with pytest.raises(ValueError, match=match) as e:
        read_idx(path)
    assert "broken-idx1-ubyte" in str(e.value)


def test_missing_files_and_bad_arguments(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_idx(tmp_path / "nope.gz")
    with pytest.raises(FileNotFoundError, match="t10k-images"):
        load_mnist("test", root=tmp_path)
    with pytest.raises(ValueError, match="split"):
        load_mnist("dev", root=tmp_path)
    with pytest.raises(ValueError, match="dataset"):
        load_mnist("train", dataset="cifar", root=tmp_path)
    with pytest.raises(ValueError, match="name"):
        load_image_dataset("cifar", root=tmp_path)


def test_projective_params_seeded_and_in_range():
    a = projective_params(2000, torch.Generator().manual_seed(1))
    b = projective_params(2000, torch.Generator().manual_seed(1))
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    assert a["angle"].abs().max() <= math.pi and a["shear"].abs().max() <= 1.5
    s = (a["scale"].prod(-1)).sqrt()                       # (s a)(s / a) = s^2
    assert s.min() >= 1 - 1e-12 and s.max() <= 2 + 1e-12
    aspect = (a["scale"][:, 0] / a["scale"][:, 1]).sqrt()
    assert aspect.min() >= 1 / 1.5 - 1e-12 and aspect.max() <= 1.5 + 1e-12
    p, q = a["perspective"].unbind(-1)
    assert (q.abs() <= 0.8 * (1 - (p / 0.8).abs()) + 1e-12).all()


def test_projective_matrix_maps_a_point_as_the_formula_says():
    params = {"angle": torch.tensor([0.3], dtype=torch.float64),
              "shear": torch.tensor([0.5], dtype=torch.float64),
              "scale": torch.tensor([[1.2, 0.8]], dtype=torch.float64),
              "perspective": torch.tensor([[0.1, -0.2]], dtype=torch.float64)}
    H = projective_matrix(params, canvas=64, digit=28)[0]
    u = torch.tensor([0.2, -0.1], dtype=torch.float64)
    c, s = math.cos(0.3), math.sin(0.3)
    M = torch.tensor([[c, -s], [s, c]], dtype=torch.float64) @ torch.tensor(
        [[1, 0.5], [0, 1]], dtype=torch.float64) @ torch.diag(torch.tensor([1.2, 0.8],
                                                                            dtype=torch.float64))
    w = torch.tensor([0.1, -0.2], dtype=torch.float64) * 64 / 28
    expected = M @ u / (w @ u + 1)
    got = H @ torch.cat([u, torch.ones(1, dtype=torch.float64)])
    torch.testing.assert_close(got[:2] / got[2], expected)


def test_warp_moves_a_bright_spot_where_the_homography_says():
    img = torch.zeros(1, 28, 28)
    img[0, 9:12, 17:20] = 255.0                         # blob centred at row 10, column 18
    params = projective_params(1, torch.Generator().manual_seed(3))
    H = projective_matrix(params, 64, 28)
    out = warp_images(img, H, 64)
    assert out.shape == (1, 64, 64) and out.min() >= 0 and out.max() <= 255
    # source centre in normalised canvas coordinates (y up): canvas pixel (28, 36)
    src = torch.tensor([(36 + 0.5) / 32 - 1, 1 - (28 + 0.5) / 32, 1.0], dtype=torch.float64)
    dst = H[0] @ src
    x, y = float(dst[0] / dst[2]), float(dst[1] / dst[2])
    w = out[0].double().clamp(min=0)
    rows, cols = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    r, c = float((w * rows).sum() / w.sum()), float((w * cols).sum() / w.sum())
    assert abs(c - ((x + 1) * 32 - 0.5)) < 1.0 and abs(r - ((1 - y) * 32 - 0.5)) < 1.0


def test_rotation_by_a_quarter_turn_matches_rot90():
    img = torch.rand(3, 28, 28) * 255
    out = rotate_images(img, torch.full((3,), math.pi / 2, dtype=torch.float64))
    torch.testing.assert_close(out, torch.rot90(img, 1, (-2, -1)), atol=1e-3, rtol=0)


def test_variants_are_seeded_cached_and_shaped(tmp_path):
    root = write_mnist_root(tmp_path / "mnist")
    cache = tmp_path / "cache"
    x, y = load_image_dataset("rotated_mnist", "train", root=root, cache=cache)
    assert x.shape == (270, 28, 28) and x.dtype == torch.uint8 and len(y) == 270
    assert sorted(p.name for p in cache.iterdir()) == [
        f"rotated_mnist_seed1_{s}.pt" for s in ("test", "train", "valid")]
    x2, _ = load_image_dataset("rotated_mnist", "train", root=root, cache=cache)
    assert torch.equal(x, x2)
    x3, _ = load_image_dataset("rotated_mnist", "train", root=root, cache=tmp_path / "c2")
    assert torch.equal(x, x3)                              # regenerated identically
    plain, _ = load_image_dataset("mnist", "train", root=root)
    shifted, ys = load_image_dataset("shifted_mnist", "train", root=root, cache=cache)
    # each shifted digit is a cyclic shift of the original
    for i in range(5):
        assert any(torch.equal(torch.roll(plain[i], (a, b), (-2, -1)), shifted[i])
                   for a in range(28) for b in range(28))
    px, py = load_image_dataset("projective_mnist", "valid", root=root, cache=cache,
                                copies=2, n_train=20, n_valid=10)
    tx, _ = load_image_dataset("projective_mnist", "train", root=root, cache=cache,
                               copies=2, n_train=20, n_valid=10)
    assert px.shape == (10, 64, 64) and tx.shape == (40, 64, 64) and px.dtype == torch.uint8
    assert px.float().mean() > 1.0


def test_real_mnist_when_available():
    root = Path("/work/shared/data/mnist")
    if not root.is_dir():
        pytest.skip("MNIST files not present")
    x, y = load_mnist("test", root=root)
    assert x.shape == (10000, 28, 28) and int(y.max()) == 9
