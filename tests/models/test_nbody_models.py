"""One test suite for every registered n-body model.

Every model registered with ``in_types == NBODY_IN_TYPES`` gets these tests without writing any:
equivariance under its declared group (positions and displacement, float32 and float64), batching,
degenerate inputs, input errors, a tiny learning run and a checkpoint round trip. A model whose
default config is slow adds a small one to ``SMALL_CONFIGS``. Per-model files hold only what is
particular to one model (reference implementations, parameter counts, declared parities, layers).
"""

import importlib
import pkgutil

import pytest
import torch

import symformer.models
from symformer.models import available, create, spec
from symformer.models._nbody_io import EXAMPLE_NODES, NBODY_IN_TYPES, fully_connected_edges

from nbody_model_checks import (BAD_INPUTS, assert_nbody_equivariant, batch_equals_single,
                                finite_at_degenerate_inputs, learns_on_simulated_systems,
                                lone_particle_alone, run_bad_inputs, save_load_roundtrip)

# Small but complete: every model keeps its default lmax, so all its paths are exercised.
# output_scale=1.0: TFN / SE(3)-Transformer start with a 100x smaller displacement otherwise.
SMALL_CONFIGS = {
    "cgenn": {"channels": 8, "n_layers": 2},
    "ga_attention": {"hidden": 16, "n_layers": 2, "heads": 2},
    "gatr": {"hidden_mv": 4, "hidden_s": 8, "blocks": 2, "heads": 2},
    "glgenn": {"channels": 8, "n_layers": 2},
    "egnn": {"hidden": 16, "n_layers": 2},
    "equiformer": {"channels": 8, "n_layers": 2, "heads": 2},
    "se3_transformer": {"channels": 4, "n_layers": 2, "output_scale": 1.0},
    "symformer3d": {"channels": 8, "n_layers": 2, "heads": 2},
    "tfn": {"channels": 4, "n_layers": 2, "output_scale": 1.0},
    "torchmd_et": {"hidden": 16, "n_layers": 2, "heads": 4, "num_rbf": 8},
    "transformer": {"dim": 16, "n_layers": 2, "heads": 2},
}


def _nbody_models():
    # Import every public model module, so that the suite does not depend on which test files
    # happened to import (and thereby register) a model first.
    for info in pkgutil.iter_modules(symformer.models.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"symformer.models.{info.name}")
    # Names starting with "_" are test-only registrations (tests/train/conftest.py).
    return [n for n in available("model")
            if not n.startswith("_") and spec(n).in_types == NBODY_IN_TYPES]


NBODY_MODELS = _nbody_models()


@pytest.fixture(params=NBODY_MODELS)
def name(request):
    return request.param


def small(name, dtype=torch.float64):
    """The registered model ``name`` in its small test config (default config if none)."""
    return create(name, **SMALL_CONFIGS.get(name, {})).to(dtype)


def _example(name, model, dtype, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return spec(name).example_inputs(model, gen, dtype), gen


def test_known_models_are_registered_nbody_models():
    assert set(SMALL_CONFIGS) <= set(NBODY_MODELS)


def test_contract(name):
    s = spec(name)
    model = small(name, torch.float32)
    inputs, _ = _example(name, model, torch.float32)
    before = {k: v.clone() for k, v in inputs.items()}
    out = model(**inputs)
    assert s.out_types == "node:point"
    assert out.shape == (EXAMPLE_NODES, 3) and out.dtype == torch.float32
    for k, v in inputs.items():  # the caller's tensors are left alone
        assert torch.equal(v, before[k]), k
    assert "permutation" in s.make_group(model).kinds
    with pytest.raises(TypeError, match="no_such_option"):
        create(name, no_such_option=1)


def test_equivariance(name, dtype):
    model = small(name, dtype)
    inputs, gen = _example(name, model, dtype)
    group = spec(name).make_group(model)
    errs = assert_nbody_equivariant(model, group, inputs, generator=gen)
    assert set(group.kinds) <= set(errs)


def test_default_config_equivariant_in_float32(name):
    # The benchmark configuration meets the float32 target (relative error <= 1e-5).
    model = create(name)
    inputs, gen = _example(name, model, torch.float32, seed=2)
    assert_nbody_equivariant(model, spec(name).make_group(model), inputs, n_samples=1,
                             generator=gen)


def test_batch_equals_single_shuffled_and_mixed_sizes(name):
    batch_equals_single(small(name))


# symformer/layers/tfn.py (TFNEdgeKernel) cannot reshape an empty edge set: a batch whose
# systems are all single particles raises. Strict, so the marker must go once that is fixed.
def test_lone_particle_alone(name):
    lone_particle_alone(small(name))


def test_finite_at_coincident_points_rest_and_lone_particles(name):
    finite_at_degenerate_inputs(small(name))


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_named(name, case):
    run_bad_inputs(small(name), cases=(case,))


def test_learns_on_simulated_systems(name):
    torch.manual_seed(0)
    learns_on_simulated_systems(small(name, torch.float32))


def test_save_load_roundtrip(name, dtype, tmp_path):
    model = small(name, dtype)
    inputs, _ = _example(name, model, dtype)
    save_load_roundtrip(model, inputs, tmp_path / f"{name}.pt")


def test_fully_connected_edges_of_unsorted_mixed_systems():
    batch = torch.tensor([2, 0, 2, 1, 2, 0])  # sizes 2, 1, 3; system 1 has no edges
    src, dst = fully_connected_edges(batch)
    assert src.shape == (2 * 1 + 0 + 3 * 2,)
    assert bool((batch[src] == batch[dst]).all()) and bool((src != dst).all())
    assert len(set(zip(src.tolist(), dst.tolist()))) == src.shape[0]


def _takes_neighbors(name):
    import inspect
    return "neighbors" in inspect.signature(spec(name).factory).parameters


LOCAL_MODELS = [n for n in NBODY_MODELS if _takes_neighbors(n)]


# option -> (a value giving the complete graph on the example systems, sparser settings,
# bad values). k = n - 1 neighbours or a radius beyond every distance is the complete graph;
# sparser graphs (a short radius leaves some nodes without messages) keep exact E(3) x S_n
# symmetry.
GRAPH_OPTIONS = {
    "neighbors": ({"neighbors": 4}, [{"neighbors": 2}], [0]),
    "radius": ({"radius": 1e6}, [{"radius": 1.5}, {"radius": 2.5, "neighbors": 2},
                                 {"radius": 1e-6}],  # the last: no edges at all
               [0, -1.0, float("nan"), True, "2"]),
}


@pytest.mark.parametrize("option", GRAPH_OPTIONS)
@pytest.mark.parametrize("local_name", LOCAL_MODELS)
def test_local_graphs(local_name, option):
    complete, sparser, bad_values = GRAPH_OPTIONS[option]
    config = SMALL_CONFIGS.get(local_name, {})
    torch.manual_seed(0)
    full = create(local_name, **config).double()
    same = create(local_name, **config, **complete).double()
    same.load_state_dict(full.state_dict())
    inputs, gen = _example(local_name, full, torch.float64)
    torch.testing.assert_close(same(**inputs), full(**inputs), atol=1e-12, rtol=0)
    for options in sparser:
        for dtype in (torch.float64, torch.float32):  # the harness's tight and loose checks
            local = create(local_name, **config, **options).to(dtype)
            typed = {k: v.to(dtype) if v.is_floating_point() else v for k, v in inputs.items()}
            assert torch.isfinite(local(**typed)).all()
            assert_nbody_equivariant(local, spec(local_name).make_group(local), typed,
                                     generator=gen)
    for bad in bad_values:
        with pytest.raises(ValueError, match=option):
            create(local_name, **{option: bad})


def test_system_edges_radius_keeps_the_close_pairs_of_each_system():
    from symformer.models._nbody_io import system_edges
    gen = torch.Generator().manual_seed(2)
    pos = torch.randn(14, 3, generator=gen, dtype=torch.float64)
    batch = torch.tensor([0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 2, 2, 0, 1])  # unsorted, sizes 6, 6, 2
    for k in (None, 2):
        src, dst = system_edges(pos, batch, k, 1.2)
        for i in range(14):
            close = [j for j in range(14) if j != i and batch[j] == batch[i]
                     and float((pos[j] - pos[i]).norm()) < 1.2]
            if k is not None:
                close = sorted(close, key=lambda j: float((pos[j] - pos[i]).norm()))[:k]
            assert sorted(src[dst == i].tolist()) == sorted(close)
    assert (src != dst).all()


def test_system_edges_keep_the_k_nearest_of_each_system():
    from symformer.models._nbody_io import system_edges
    gen = torch.Generator().manual_seed(1)
    pos = torch.randn(12, 3, generator=gen, dtype=torch.float64)
    batch = torch.tensor([0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 2, 2])  # unsorted, sizes 5, 5, 2
    src, dst = system_edges(pos, batch, 2)
    for i in range(12):
        others = [j for j in range(12) if j != i and batch[j] == batch[i]]
        nearest = sorted(others, key=lambda j: float((pos[j] - pos[i]).norm()))[:2]
        assert sorted(src[dst == i].tolist()) == sorted(nearest)
