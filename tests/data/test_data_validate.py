"""symformer.data.validate: every checker names the argument and states what was expected."""

import pytest
import torch

from symformer.data.validate import (check_batch_vector, check_finite, check_index,
                                     check_same_device, check_same_dtype, check_same_length,
                                     check_shape, check_tensor)


def test_shape_message_names_argument():
    with pytest.raises(ValueError, match=r"pos: expected shape \(N, 3\), got \(5, 2\)"):
        check_tensor("pos", torch.zeros(5, 2), ("N", 3))
    check_tensor("pos", torch.zeros(5, 3), ("N", 3))


def test_shape_wildcards_ellipsis_and_named_dims():
    check_shape("x", torch.zeros(2, 4, 3, 3), ("...", 3, 3))
    check_shape("x", torch.zeros(3, 3), ("...", 3, 3))
    check_shape("x", torch.zeros(7, 2, 5), ("N", "..."))
    check_shape("x", torch.zeros(7), ("N", "..."))
    check_shape("x", torch.zeros(4, 9), (None, 9))
    with pytest.raises(ValueError, match="x: expected shape"):
        check_shape("x", torch.zeros(3), ("...", 3, 3))
    with pytest.raises(ValueError, match=r"a: expected shape \(N, N\) with N=2"):
        check_shape("a", torch.zeros(2, 3), ("N", "N"))
    dims = {}
    check_shape("pos", torch.zeros(5, 3), ("N", 3), dims)
    assert dims == {"N": 5}
    with pytest.raises(ValueError, match="batch: .*N=5"):
        check_shape("batch", torch.zeros(4), ("N",), dims)
    with pytest.raises(ValueError, match="at most one"):
        check_shape("x", torch.zeros(1, 1), ("...", "..."))


def test_dtype_kind_and_type():
    with pytest.raises(TypeError, match="pos: expected a float dtype"):
        check_tensor("pos", torch.zeros(2, 3, dtype=torch.long), dtype_kind="float")
    with pytest.raises(TypeError, match="idx: expected a int dtype"):
        check_tensor("idx", torch.zeros(2, dtype=torch.bool), dtype_kind="int")
    with pytest.raises(TypeError, match="pos: expected a torch.Tensor, got list"):
        check_tensor("pos", [[0.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match="dtype_kind"):
        check_tensor("pos", torch.zeros(1), dtype_kind="real")


def test_finite(dtype):
    x = torch.zeros(4, 3, dtype=dtype)
    check_finite("pos", x)
    y = x.clone()
    y[1, 2] = float("nan")
    with pytest.raises(ValueError, match="pos: contains NaN at 1 entries"):
        check_tensor("pos", y)
    y[0, 0] = float("inf")
    y[3, 0] = -float("inf")
    with pytest.raises(ValueError, match="pos: contains NaN at 1 entries and inf at 2 entries"):
        check_finite("pos", y)
    check_tensor("pos", y, finite=False)
    assert torch.isnan(y[1, 2])  # the caller's tensor is left alone


def test_index():
    check_index("edge_index", torch.tensor([[0, 4], [1, 2]]), 5)
    check_index("idx", torch.tensor([0, 4]), 5)
    check_index("idx", torch.zeros(2, 0, dtype=torch.long), 0)
    with pytest.raises(ValueError, match="edge_index: index 7 out of range for 5 nodes"):
        check_index("edge_index", torch.tensor([[0, 7], [1, 2]]), 5)
    with pytest.raises(ValueError, match="edge_index: index -1 out of range"):
        check_index("edge_index", torch.tensor([[0, -1], [1, 2]]), 5)
    with pytest.raises(TypeError, match="edge_index: expected an integer dtype"):
        check_index("edge_index", torch.zeros(2, 3), 5)
    with pytest.raises(ValueError, match=r"edge_index: expected shape \(E,\) or \(2, E\)"):
        check_index("edge_index", torch.zeros(3, 3, dtype=torch.long), 5)


def test_batch_vector():
    check_batch_vector("batch", torch.tensor([0, 0, 1, 3]), 4, 4)
    check_batch_vector("batch", torch.zeros(0, dtype=torch.long), 0)
    with pytest.raises(ValueError, match="batch: graph ids must be sorted"):
        check_batch_vector("batch", torch.tensor([0, 1, 0]), 3)
    with pytest.raises(ValueError, match="batch: graph id 3 out of range for 2 graphs"):
        check_batch_vector("batch", torch.tensor([0, 3]), 2, 2)
    with pytest.raises(ValueError, match="batch: graph id -1 is negative"):
        check_batch_vector("batch", torch.tensor([-1, 0]), 2)
    with pytest.raises(ValueError, match="batch: expected shape"):
        check_batch_vector("batch", torch.tensor([0, 0]), 3)


def test_same_length_dtype_device():
    a, b = torch.zeros(3, 2), torch.zeros(3)
    check_same_length({"a": a, "b": b})
    with pytest.raises(ValueError, match=r"c: expected length 3 \(as a\), got 4"):
        check_same_length([("a", a), ("c", torch.zeros(4))])
    with pytest.raises(ValueError, match="s: expected at least one dimension"):
        check_same_length({"s": torch.tensor(1.0)})
    check_same_dtype({"a": a, "b": b})
    with pytest.raises(TypeError, match=r"d: expected dtype torch.float32 \(as a\)"):
        check_same_dtype({"a": a, "d": a.double()})
    check_same_device({"a": a, "b": b})
    with pytest.raises(TypeError, match="x: expected a torch.Tensor"):
        check_same_device({"a": a, "x": 1.0})
