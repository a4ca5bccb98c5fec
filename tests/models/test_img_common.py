"""The shared image-classifier pieces: one registration contract, one example input, one
patch-grid check for every patch model."""

import pytest
import torch

from symformer.models import create, spec, vit
from symformer.models._image_common import example_image, patch_grid

IMAGE_MODELS = ["vit", "octic_vit", "polyphase_vit", "p4m_cnn", "cnn", "etn"]


@pytest.mark.parametrize("name", IMAGE_MODELS)
def test_every_image_model_registers_the_same_contract(name):
    s = spec(name)
    assert s.in_types == {"image": "image"} and s.out_types == "scalar"
    assert s.example_inputs is example_image and s.tags == ("image",)
    assert s.description


def test_example_image_follows_the_module_and_stays_exported_by_vit(dtype):
    assert vit.example_image is example_image
    m = create("vit", image_size=16, patch=4, in_channels=3)
    x = example_image(m, torch.Generator().manual_seed(0), dtype)["image"]
    assert x.shape == (2, 3, 16, 16) and x.dtype == dtype
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0


@pytest.mark.parametrize("name", ["vit", "octic_vit", "polyphase_vit"])
def test_patch_must_divide_image_size(name):
    with pytest.raises(ValueError, match=r"image_size=30 must be divisible by patch=4"):
        create(name, image_size=30, patch=4)


def test_patch_grid():
    assert patch_grid(28, 4) == 7 and patch_grid(28, 28) == 1
    with pytest.raises(ValueError, match="divisible"):
        patch_grid(28, 5)
