"""Every registered model and layer passes the equivariance harness for its declared group, in
float32 and float64 (new registrations are covered without writing a test)."""

import pytest
import torch

from symformer.models import available, create, spec
from symformer.testing import check_registered


@pytest.mark.parametrize("name", [n for n in available() if not n.startswith("_")])
def test_registered_entry_is_equivariant(name):
    rows = check_registered(name, n_samples=2, generator=torch.Generator().manual_seed(7))
    failed = [r for r in rows if not r.passed]
    assert not failed, "\n".join(f"{r.name} {r.dtype} {r.kind}: {r.error:.2e} > {r.tolerance:.0e}"
                                 for r in failed)
    assert {r.dtype for r in rows} == {"float32", "float64"}


@pytest.mark.parametrize("name", ["equivariant_linear", "gate", "egnn"])
def test_compile_smoke(name):
    # torch.compile must trace our modules (no data-dependent Python the compiler rejects).
    module = create(name).eval()
    inputs = spec(name).example_inputs(module, torch.Generator().manual_seed(0), torch.float32)
    compiled = torch.compile(module, backend="eager", fullgraph=False)
    torch.testing.assert_close(compiled(**inputs), module(**inputs))
