import pytest
import torch
from hypothesis import given, settings, strategies as st

from symformer.primitives import scatter_mean, scatter_sum, segment_softmax


def test_scatter_sum_and_mean(dtype):
    src = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], dtype=dtype)
    index = torch.tensor([0, 2, 0])
    s = scatter_sum(src, index, 4)
    torch.testing.assert_close(s, torch.tensor([[6.0, 8.0], [0, 0], [3, 4], [0, 0]], dtype=dtype))
    m = scatter_mean(src, index, 4)
    torch.testing.assert_close(m, torch.tensor([[3.0, 4.0], [0, 0], [3, 4], [0, 0]], dtype=dtype))
    s1 = scatter_sum(src.T, index, 3, dim=1)
    torch.testing.assert_close(s1, s[:3].T)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n_edges=st.integers(1, 40), n_seg=st.integers(1, 8),
       scale=st.sampled_from([1.0, 100.0, 1e4]))
def test_segment_softmax_matches_loop(seed, n_edges, n_seg, scale):
    g = torch.Generator().manual_seed(seed)
    logits = scale * torch.randn(n_edges, 3, dtype=torch.float64, generator=g)
    index = torch.randint(0, n_seg, (n_edges,), generator=g)
    out = segment_softmax(logits, index, n_seg)
    assert torch.isfinite(out).all()
    ref = torch.empty_like(logits)
    for s in range(n_seg):
        mask = index == s
        if mask.any():
            ref[mask] = torch.softmax(logits[mask], dim=0)
            torch.testing.assert_close(out[mask].sum(0), torch.ones(3, dtype=torch.float64))
    torch.testing.assert_close(out, ref)


def test_segment_softmax_grad_and_no_mutation(dtype):
    logits = torch.randn(6, 2, dtype=dtype, requires_grad=True)
    before = logits.detach().clone()
    index = torch.tensor([0, 0, 1, 1, 1, 3])
    out = segment_softmax(logits, index, 4)
    (out[:, 0] * torch.arange(6, dtype=dtype)).sum().backward()
    assert torch.isfinite(logits.grad).all()
    assert torch.equal(logits.detach(), before)
    assert out[5].eq(1).all()


def test_errors():
    with pytest.raises(ValueError):
        scatter_sum(torch.ones(3), torch.tensor([0, 1]), 2)
    with pytest.raises(TypeError):
        scatter_sum(torch.ones(3), torch.tensor([0.0, 1.0, 0.0]), 2)
    with pytest.raises(ValueError):
        segment_softmax(torch.ones(3), torch.tensor([0, 1, 0]), -1)
