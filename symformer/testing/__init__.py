"""The public verification API.

* :func:`assert_equivariant`, :func:`equivariance_error`, :func:`equivariance_errors` — check
  any function or module against a group, with inputs transformed by an independent oracle;
* :func:`check_registered` — the same for a registered model or layer, in several dtypes;
* :func:`transform` — the oracle itself (see :mod:`symformer.testing.oracles`).

See ``docs/verification.md``.
"""

from .equivariance import (DEFAULT_TOLERANCES, assert_equivariant, default_tolerance,
                           equivariance_error, equivariance_errors)
from .oracles import transform
from .registered import CheckRow, check_registered

__all__ = ["DEFAULT_TOLERANCES", "assert_equivariant", "default_tolerance", "equivariance_error",
           "equivariance_errors", "transform", "CheckRow", "check_registered"]
