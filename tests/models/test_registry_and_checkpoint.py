"""Registry lookups, config validation, atomic checkpoints and symformer.load."""


import pytest
import torch

import symformer
from symformer.checkpoint import atomic_save, load_checkpoint
from symformer.models import available, config_of, create, spec


def test_available_lists_layers_and_models():
    names = available()
    assert "equivariant_linear" in names
    assert set(available("layer")) <= set(names)
    assert all(spec(n).kind in ("model", "layer") for n in names)


def test_unknown_name_is_named():
    with pytest.raises(ValueError, match="no_such_model"):
        create("no_such_model")


def test_save_load_roundtrip(tmp_path, dtype):
    layer = create("equivariant_linear", lmax=1, in_channels=3, out_channels=4).to(dtype)
    path = symformer.save(layer, tmp_path / "sub" / "m.pt", extra={"task": "unit"})
    loaded = symformer.load(path)
    assert config_of(loaded) == config_of(layer)
    assert loaded.checkpoint_extra == {"task": "unit"}
    assert not loaded.training
    x = torch.randn(2, 4, 3, dtype=dtype)
    torch.testing.assert_close(loaded(x), layer(x))
    assert loaded.weight.dtype == dtype


def test_load_rejects_missing_and_corrupt_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        symformer.load(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="bad.pt"):
        symformer.load(bad)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(ValueError, match="not a symformer checkpoint"):
        load_checkpoint(foreign)


def test_atomic_save_leaves_old_file_on_failure(tmp_path):
    path = tmp_path / "keep.pt"
    atomic_save({"a": torch.ones(1)}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        atomic_save({"a": Unpicklable()}, path)
    assert torch.load(path, weights_only=True)["a"].item() == 1.0
    assert [p.name for p in tmp_path.iterdir()] == ["keep.pt"]  # no temp file left behind


def test_save_requires_registry_model(tmp_path):
    with pytest.raises(ValueError, match="config is unknown"):
        symformer.save(torch.nn.Linear(2, 2), tmp_path / "x.pt")
