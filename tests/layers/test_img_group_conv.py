"""p4m lifting and group convolutions commute with the octic group."""

import pytest
import torch

from symformer.layers.image import _d4
from symformer.layers.image.group_conv import P4MConv, P4MLift, p4m_act, p4m_pool


def test_p4m_act_is_an_action():
    f = torch.randn(1, 2, 8, 5, 5, dtype=torch.float64)
    t = _d4.cayley_table()
    for a in range(8):
        for b in range(8):
            torch.testing.assert_close(p4m_act(p4m_act(f, b), a), p4m_act(f, t[a][b]))


def test_lift_and_group_conv_are_equivariant(dtype):
    lift, conv = P4MLift(2, 3, 3).to(dtype), P4MConv(3, 4, 5).to(dtype)
    x = torch.randn(2, 2, 9, 9, dtype=dtype)
    f = torch.randn(2, 3, 8, 9, 9, dtype=dtype)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    for e in range(8):
        torch.testing.assert_close(lift(_d4.act_image(x, e)), p4m_act(lift(x), e),
                                   atol=tol, rtol=tol)
        torch.testing.assert_close(conv(p4m_act(f, e)), p4m_act(conv(f), e), atol=tol, rtol=tol)
        torch.testing.assert_close(p4m_pool(p4m_act(f, e)), p4m_pool(f), atol=tol, rtol=tol)


def test_a_wrong_group_index_breaks_equivariance():
    # sanity of the test itself: permuting the group axis the wrong way fails
    conv = P4MConv(2, 2, 3).double()
    f = torch.randn(1, 2, 8, 7, 7, dtype=torch.float64)
    wrong = _d4.act_image(conv(f), 2)
    assert (conv(p4m_act(f, 2)) - wrong).abs().max() > 1e-3


def test_errors():
    with pytest.raises(ValueError, match="odd"):
        P4MLift(1, 2, 4)
    with pytest.raises(ValueError, match="in_channels"):
        P4MConv(0, 2)
    with pytest.raises(ValueError, match="shape"):
        P4MConv(2, 2)(torch.randn(1, 3, 8, 5, 5))
