"""Checks shared by the interatomic-potential tests, as plain functions of a model."""

import torch

__all__ = ["assert_forces_are_minus_energy_gradient"]


def assert_forces_are_minus_energy_gradient(model, atomic_numbers, pos, h: float = 1e-5,
                                            atol: float = 1e-7, rtol: float = 1e-6) -> None:
    """``model(z, pos)["forces"]`` equals central finite differences of ``-energy`` (float64)."""
    forces = model(atomic_numbers, pos)["forces"]
    fd = torch.zeros_like(pos)
    for a in range(pos.shape[0]):
        for d in range(3):
            p, q = pos.clone(), pos.clone()
            p[a, d] += h
            q[a, d] -= h
            e_p, e_q = model(atomic_numbers, p)["energy"], model(atomic_numbers, q)["energy"]
            fd[a, d] = -(e_p - e_q).sum() / (2 * h)
    torch.testing.assert_close(forces, fd, atol=atol, rtol=rtol)
