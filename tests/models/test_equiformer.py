"""Equiformer specifics: the declared group (E(3), reflections included); config errors.

The checks every n-body model gets (equivariance, batching, errors, learning, checkpoints) are
in test_nbody_models.py."""

import pytest

from symformer.models import registry
from symformer.models.equiformer import Equiformer


def test_declares_e3():
    assert "reflection" in registry.spec("equiformer").make_group().kinds


def test_bad_config():
    with pytest.raises(TypeError, match="chanels"):
        registry.create("equiformer", chanels=3)
    with pytest.raises(ValueError, match="channels"):
        Equiformer(channels=0)
    with pytest.raises(ValueError, match="activation"):
        Equiformer(activation="relu")
    with pytest.raises(TypeError):
        Equiformer(16)  # keyword-only
