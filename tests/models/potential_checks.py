"""Checks shared by the interatomic-potential tests, as plain functions of a model."""

import torch

__all__ = ["assert_forces_are_minus_energy_gradient", "random_molecules",
           "assert_permutation_and_batching", "assert_energy_smooth_at_cutoff"]


def random_molecules(dtype, generator: torch.Generator, sizes=(5, 4)):
    """Random molecules of H, C, N, O with bond-like spacings: ``z (N,)``, ``pos (N, 3)`` in
    ``dtype``, sorted ``batch (N,)`` with ``sizes`` atoms per molecule."""
    n = sum(sizes)
    z = torch.tensor([1, 6, 7, 8])[torch.randint(0, 4, (n,), generator=generator)]
    pos = (1.3 * torch.randn(n, 3, generator=generator, dtype=torch.float64)).to(dtype)
    batch = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    return z, pos, batch


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


def assert_permutation_and_batching(model, dtype, system: int = 0) -> None:
    """Relabelling the atoms permutes the forces and keeps the energies; molecule ``system``
    alone has the energy it has in the batch (graphs are built per system)."""
    z, pos, batch = random_molecules(dtype, torch.Generator().manual_seed(5))
    out = model(z, pos, batch)
    perm = torch.randperm(z.shape[0], generator=torch.Generator().manual_seed(2))
    out_p = model(z[perm], pos[perm], batch[perm])
    tol = dict(rtol=1e-10, atol=1e-10) if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out_p["energy"], out["energy"], **tol)
    torch.testing.assert_close(out_p["forces"], out["forces"][perm], **tol)
    single = model(z[batch == system], pos[batch == system])
    torch.testing.assert_close(single["energy"][0], out["energy"][system], **tol)


def assert_energy_smooth_at_cutoff(model) -> None:
    """A float64 potential with cutoff 3: an O atom leaving C's cutoff (and H's beyond ~3.4)
    stops contributing, and the energy gap across the cutoff shrinks faster than ``delta^2``
    (value and first two derivatives of the envelope vanish there)."""
    if model.cutoff != 3.0:
        raise ValueError(f"model: expected cutoff 3.0, got {model.cutoff}")
    z = torch.tensor([6, 1, 8])
    base = torch.tensor([[0.0, 0.0, 0.0], [0.0, 1.1, 0.0]], dtype=torch.float64)
    direction = torch.tensor([0.6, -0.3, 0.74], dtype=torch.float64)
    direction = direction / direction.norm()

    def energy(d):  # the O atom at distance d from C
        pos = torch.cat([base, (d * direction)[None]])
        return float(model(z, pos, compute_forces=False)["energy"].detach())

    assert abs(energy(3.5) - energy(3.6)) < 1e-12
    gaps = [abs(energy(3.0 - delta) - energy(3.0 + delta)) for delta in (0.04, 0.02, 0.01)]
    assert gaps[0] > 0  # the atom does interact inside the cutoff
    assert gaps[0] / gaps[1] > 5 and gaps[1] / gaps[2] > 5, gaps
