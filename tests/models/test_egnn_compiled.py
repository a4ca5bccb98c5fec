"""EGNN's C++ layers (csrc/egnn_layer.cpp): the same values and gradients as the Python layers on
every graph kind and option, split among threads or not; the graph cache; the fallback."""

import pytest
import torch

from symformer import _cpp
from symformer.groups import E3, Symmetric
from symformer.models import _egnn_layers as egnn_module
from symformer.models._egnn_layers import _plan_chunks
from symformer.models.egnn import EGNN

from nbody_model_checks import assert_nbody_equivariant, systems

pytestmark = pytest.mark.skipif(egnn_module._kernels() is None,
                                reason="the C++ kernels cannot be built here")


@pytest.fixture
def two_threads(monkeypatch):
    """Two threads and chunks of any size, so even small test batches are split."""
    monkeypatch.setattr(egnn_module, "_MIN_CHUNK_EDGES", 1)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def _run(model, data, wrt=("pos", "vel")):
    """Prediction, and gradients of a loss on it w.r.t. ``wrt`` inputs and every parameter."""
    model.zero_grad(set_to_none=True)
    inputs = {k: v.clone().requires_grad_(k in wrt) for k, v in data.items() if k != "batch"}
    out = model(**inputs, batch=data["batch"])
    (out.sin() * torch.linspace(-1, 2, out.numel(), dtype=out.dtype).view_as(out)).sum().backward()
    grads = [inputs[k].grad for k in wrt]
    grads += [p.grad if p.grad is not None else torch.zeros_like(p) for p in model.parameters()]
    return out.detach(), grads


def _compare(kwargs, data, wrt=("pos", "vel"), seed=0):
    torch.manual_seed(seed)
    compiled = EGNN(hidden=16, n_layers=3, compiled=True, **kwargs).double()
    for p in compiled.parameters():  # larger weights than the init, so every term matters
        p.data.normal_(0, 0.3)
    python = EGNN(hidden=16, n_layers=3, compiled=False, **kwargs).double()
    python.load_state_dict(compiled.state_dict())
    out, grads = _run(compiled, data, wrt)
    assert compiled(**data).grad_fn.name() == "_CompiledLayerBackward"
    ref, ref_grads = _run(python, data, wrt)
    assert python(**data).grad_fn.name() == "_LayerBackward"
    torch.testing.assert_close(out, ref, rtol=1e-11, atol=1e-11)
    # Sums in another order: round-off relative to the largest term (the Python layers against
    # plain autograd differ as much, 2e-11, on the ill-conditioned unequal-systems case).
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=1e-10, atol=1e-10 * max(1.0, r.abs().max()))


def _shuffled(data, seed=0):
    perm = torch.randperm(data["pos"].shape[0], generator=torch.Generator().manual_seed(seed))
    return {k: v[perm] for k, v in data.items()}


GRAPHS = [{}, {"neighbors": 2}, {"radius": 1.5}, {"neighbors": 3, "radius": 2.0}]


@pytest.mark.parametrize("graph", GRAPHS, ids=["complete", "knn", "radius", "knn+radius"])
@pytest.mark.parametrize("threads", [1, 2])
def test_matches_python_layers(graph, threads, monkeypatch):
    monkeypatch.setattr(egnn_module, "_MIN_CHUNK_EDGES", 1)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        _compare(graph, systems(6, seed=1))
        _compare(graph, _shuffled(systems(5, seed=2)))  # unsorted batch: one chunk
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("flags", [{"norm_diff": True}, {"tanh": True}, {"residual": False}])
def test_layer_options(flags, two_threads):
    _compare(flags, systems(4, seed=3))


def test_gradients_of_charges_and_unequal_systems(two_threads):
    data = systems(3, seed=4)
    n = data["pos"].shape[0]
    data["batch"] = torch.tensor([0] * 2 + [1] * 7 + [2] * (n - 9))  # irregular: one chunk
    _compare({}, data, wrt=("pos", "vel", "charges"))
    single = systems(4, n=1, seed=5)  # single-node systems: no edges at all
    _compare({}, single)


def test_chunk_plan(two_threads):
    data = systems(5, seed=0)
    model = EGNN(hidden=8, n_layers=1, compiled=True).double()
    graph, _ = model._graphs.graph(data["pos"], data["batch"])
    bounds, local_src = _plan_chunks(graph, data["batch"], 2)
    assert bounds == [0, 10, 25]  # split at a system boundary near the middle
    for (a, b), src in zip(zip(bounds, bounds[1:]), local_src):
        assert src.numel() == graph.k * (b - a) and 0 <= src.min() and src.max() < b - a
    shuffled = _shuffled(data)
    graph, _ = model._graphs.graph(shuffled["pos"], shuffled["batch"])
    assert _plan_chunks(graph, shuffled["batch"], 2).bounds == [0, 25]  # systems not contiguous
    assert _plan_chunks(graph, shuffled["batch"], 1).bounds == [0, 25]


def test_graph_cache():
    model = EGNN(hidden=8, n_layers=2).double()
    data = systems(3)
    out = model(**data)
    graph = model._graphs.last[1]
    again = {**data, "batch": data["batch"].clone()}  # an equal batch, another tensor
    torch.testing.assert_close(model(**again), out, rtol=0, atol=0)
    assert model._graphs.last[1] is graph
    other = systems(4, seed=1)  # another batch: a new graph, the right answer
    fresh = EGNN(hidden=8, n_layers=2).double()
    fresh.load_state_dict(model.state_dict())
    torch.testing.assert_close(model(**other), fresh(**other), rtol=0, atol=0)
    assert model._graphs.last[1] is not graph
    with torch.inference_mode():  # not kept: its tensors could not be saved by autograd later
        model(**data)
    assert model._graphs.last[1] is not graph and not model._graphs.last[0].is_inference()
    model(**data).sum().backward()  # training after inference mode still works
    knn = EGNN(hidden=8, n_layers=1, neighbors=2).double()
    knn(**data)
    assert knn._graphs.last is None  # k-NN graphs depend on positions: never kept


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_equivariant_split_among_threads(dtype, two_threads):
    torch.manual_seed(0)
    model = EGNN(hidden=16, n_layers=2, compiled=True).to(dtype)
    data = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in systems(4).items()}
    assert_nbody_equivariant(model, E3() * Symmetric(20), data,
                             generator=torch.Generator().manual_seed(1))


def test_second_derivatives_raise():
    model = EGNN(hidden=8, n_layers=1, compiled=True).double()
    data = systems(2)
    data["pos"].requires_grad_(True)
    with pytest.raises(RuntimeError, match="fused_backward=False"):
        torch.autograd.grad(model(**data).sum(), data["pos"], create_graph=True)


def test_bad_options():
    for kwargs in ({"compiled": "yes"}, {"compiled": True, "fused_backward": False},
                   {"compiled": True, "dense": True}):
        with pytest.raises(ValueError, match="compiled"):
            EGNN(**kwargs)
    model = EGNN(hidden=8, n_layers=1, compiled=True)
    with pytest.raises(ValueError, match="compiled.*meta"):  # CPU only
        model._use_compiled(True, torch.empty(3, device="meta"))
    with pytest.raises(ValueError, match="compiled.*bfloat16"):
        model._use_compiled(True, torch.empty(3, dtype=torch.bfloat16))
    assert not EGNN(hidden=8, n_layers=1)._use_compiled(True, torch.empty(3, dtype=torch.half))


def test_fallback_without_kernels(monkeypatch):
    # SYMFORMER_CPP=0: no kernels; compiled=None runs the Python layers, compiled=True says why.
    monkeypatch.setenv("SYMFORMER_CPP", "0")
    _cpp.load.cache_clear()
    try:
        assert egnn_module._kernels() is None
        data = systems(2)
        model = EGNN(hidden=8, n_layers=1).double()
        assert model(**data).grad_fn.name() == "_LayerBackward"
        with pytest.raises(RuntimeError, match="SYMFORMER_CPP"):
            EGNN(hidden=8, n_layers=1, compiled=True).double()(**data)
    finally:
        monkeypatch.delenv("SYMFORMER_CPP")
        _cpp.load.cache_clear()
    assert egnn_module._kernels() is not None


def test_missing_compiler_warns_and_falls_back(monkeypatch):
    from torch.utils import cpp_extension

    def broken(*args, **kwargs):
        raise RuntimeError("no compiler")

    monkeypatch.setattr(cpp_extension, "load", broken)
    _cpp.load.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match="could not compile.*no compiler"):
            assert _cpp.load("egnn_layer") is None
    finally:
        monkeypatch.undo()
        _cpp.load.cache_clear()
    with pytest.raises(FileNotFoundError, match="name"):
        _cpp.load("no_such_kernel")


def test_stale_build_lock_is_removed(monkeypatch, tmp_path):
    # A build killed outright leaves its lock file, on which PyTorch would wait forever.
    import os
    import time

    from torch.utils import cpp_extension

    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    lock = tmp_path / "symformer_egnn_layer" / "lock"
    lock.parent.mkdir()
    lock.touch()
    calls = []
    monkeypatch.setattr(cpp_extension, "load", lambda *a, **k: calls.append(lock.exists()))
    _cpp.load.cache_clear()
    try:
        assert _cpp.load("egnn_layer") is None and calls == [True]  # a fresh lock: kept
        old = time.time() - 2 * _cpp._STALE_LOCK_S
        os.utime(lock, (old, old))
        _cpp.load.cache_clear()
        with pytest.warns(RuntimeWarning, match="removing the build lock"):
            _cpp.load("egnn_layer")
        assert calls == [True, False] and not lock.exists()
    finally:
        monkeypatch.undo()
        _cpp.load.cache_clear()
