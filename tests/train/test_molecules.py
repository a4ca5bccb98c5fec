"""Molecular training end to end on tiny data: rMD17 through the CLI, resume = straight run,
ASE files with --data, QM9 targets, config errors."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from symformer import load
from symformer.cli.main import main
from symformer.train.molecules import resolve_mol_config, run_molecules

FIX = Path(__file__).resolve().parents[1] / "fixtures"
TINY = ["--model.hidden", "8", "--model.n_layers", "1", "--model.heads", "2",
        "--model.num_rbf", "4"]


@pytest.fixture
def rmd17_dir(tmp_path):
    d = tmp_path / "rmd17"
    d.mkdir()
    shutil.copy(FIX / "rmd17_ethanol_train_01.npz", d / "rmd17_ethanol_train_01.npz")
    shutil.copy(FIX / "rmd17_ethanol_train_01.npz", d / "rmd17_ethanol_test_01.npz")
    return d


def _cfg(rmd17_dir, **kw):
    over = {"data_dir": str(rmd17_dir), "n_val": 3, "batch_size": 4, "epochs": 2,
            "warmup_steps": 1, "progress_bar": False, "dtype": "float64", "model.hidden": 8,
            "model.n_layers": 1, "model.heads": 2, "model.num_rbf": 4}
    over.update(kw)
    return resolve_mol_config("rmd17", "torchmd_et_potential", over)


def test_cli_trains_rmd17_and_writes_a_loadable_model(rmd17_dir, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "rmd17", "--model", "torchmd_et_potential", "--molecule", "ethanol",
            "--data-dir", str(rmd17_dir), "--epochs", "2", "--n-val", "3", "--batch-size", "4",
            "--out", str(out), "--no-progress", *TINY]
    assert main(argv) == 0
    assert "energy MAE" in capsys.readouterr().out
    m = json.loads((out / "metrics.json").read_text())
    assert m["epochs_run"] == 2 and m["test"]["forces_unit"] == "meV/Angstrom"
    assert m["published"]["MACE"] == [0.4, 2.1] and m["n_train"] == 9
    model = load(out / "model.pt")
    assert model.atomic_energies.abs().sum() > 0  # fitted reference energies travel along
    assert (out / "loss_curve.png").is_file()
    # symformer eval re-reads the data set from the stored config and reproduces the test MAE.
    assert main(["eval", str(out / "model.pt")]) == 0
    table = capsys.readouterr().out
    assert "rmd17/ethanol" in table and "MACE 0.4 / 2.1" in table
    assert f"{m['test']['energy_mae']:.3f} meV" in table
    assert main(["eval", str(out / "model.pt"), "--split", "val", "--n", "2"]) == 0
    assert "rmd17/ethanol (2)" in capsys.readouterr().out


def test_training_lowers_the_force_error(rmd17_dir, tmp_path):
    m = run_molecules(_cfg(rmd17_dir, epochs=10, lr=3e-3, ema_decay=0.5,
                                     **{"model.hidden": 16, "model.num_rbf": 8}), tmp_path / "r")
    h = m["history"]
    assert h[-1]["train_forces_mse"] < 0.9 * h[0]["train_forces_mse"]


def test_resume_ends_where_a_straight_run_ends(rmd17_dir, tmp_path):
    straight = run_molecules(_cfg(rmd17_dir), tmp_path / "a")
    first = run_molecules(_cfg(rmd17_dir, time_limit_min=0.0), tmp_path / "b")
    assert first["stopped_by_time_limit"] and first["epochs_run"] == 1
    resumed = run_molecules(_cfg(rmd17_dir), tmp_path / "b", resume=True)
    assert resumed["epochs_run"] == 2
    assert resumed["test"]["forces_mae"] == pytest.approx(straight["test"]["forces_mae"],
                                                          rel=1e-9)
    with pytest.raises(ValueError, match="already holds a run"):
        run_molecules(_cfg(rmd17_dir), tmp_path / "a")


def test_train_on_an_extxyz_file(tmp_path, capsys):
    ase = pytest.importorskip("ase")
    import ase.io

    rng = np.random.default_rng(0)
    frames = []
    for k in range(12):
        a = ase.Atoms("CO", positions=[[0, 0, 0], [1.1 + 0.05 * rng.normal(), 0, 0]])
        a.info["dft_e"] = float(rng.normal())
        a.arrays["dft_f"] = rng.normal(size=(2, 3))
        frames.append(a)
    ase.io.write(tmp_path / "d.extxyz", frames)
    argv = ["train", "--data", str(tmp_path / "d.extxyz"), "--energy-key", "dft_e",
            "--forces-key", "dft_f", "--model", "torchmd_et_potential", "--epochs", "1",
            "--n-train", "8", "--n-val", "2", "--out", str(tmp_path / "run"), "--no-progress",
            *TINY]
    assert main(argv) == 0
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["test"]["n"] == 2


def test_qm9_target_in_paper_units(tmp_path):
    cfg = resolve_mol_config("qm9", "torchmd_et_potential", {
        "data_dir": str(FIX / "qm9_tiny.npz"), "target": "U0", "n_train": 30, "n_val": 4,
        "epochs": 1, "batch_size": 8, "progress_bar": False, "model.hidden": 8,
        "model.n_layers": 1, "model.heads": 2, "model.num_rbf": 4})
    m = run_molecules(cfg, tmp_path / "q")
    assert m["test"]["energy_unit"] == "meV" and "forces_mae" not in m["test"]
    # least-squares reference energies make the residual small against the raw U0 (~1e7 meV)
    assert m["test"]["energy_mae"] < 1e5


def test_config_errors_name_the_key():
    with pytest.raises(ValueError, match="lr_typo"):
        resolve_mol_config("rmd17", "torchmd_et_potential", {"lr_typo": 1})
    with pytest.raises(ValueError, match="hiddn"):
        resolve_mol_config("rmd17", "torchmd_et_potential", {"model.hiddn": 8})
    with pytest.raises(ValueError, match="data"):
        resolve_mol_config("atoms", "torchmd_et_potential", {})
    assert torch.get_default_dtype() == torch.float32


def test_device_option_names_what_is_wrong(rmd17_dir):
    with pytest.raises(ValueError, match="device: expected cpu, cuda"):
        _cfg(rmd17_dir, device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            _cfg(rmd17_dir, device="cuda")
    assert _cfg(rmd17_dir, device="auto")["device"] == "auto"


def test_cli_maps_lightning_device_options(rmd17_dir, tmp_path):
    from symformer.cli.train import _mol_device

    assert _mol_device(None, None, None) is None
    assert _mol_device("gpu", 1, "auto") == "cuda" and _mol_device("cpu", None, None) == "cpu"
    with pytest.raises(ValueError, match="--devices"):
        _mol_device("gpu", 2, None)
    with pytest.raises(ValueError, match="--strategy"):
        _mol_device(None, None, "ddp")
    argv = ["train", "rmd17", "--model", "torchmd_et_potential", "--data-dir", str(rmd17_dir),
            "--accelerator", "cpu", "--epochs", "1", "--n-val", "3", "--no-progress",
            "--out", str(tmp_path / "run"), *TINY]
    assert main(argv) == 0
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["config"]["device"] == "cpu" and m["host"]["device"] == "cpu"


def test_cosine_time_anneals_over_the_time_budget(rmd17_dir):
    from symformer.train.molecules import _lr_factor

    cfg = _cfg(rmd17_dir, scheduler="cosine_time", time_limit_min=10.0, min_lr=0.0)
    assert _lr_factor(cfg, 5, 10, train_seconds=0.0) == pytest.approx(1.0)
    assert _lr_factor(cfg, 5, 10, train_seconds=300.0) == pytest.approx(0.5)  # steps ignored
    assert _lr_factor(cfg, 5, 10, train_seconds=900.0) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="time_limit_min"):
        _cfg(rmd17_dir, scheduler="cosine_time")


def test_a_diverging_run_stops_with_an_error(rmd17_dir, tmp_path, monkeypatch):
    # a training that goes NaN must stop there, not carry on for the remaining epochs
    import symformer.train.molecules as mol

    calls, predict = [], mol._predict

    def predict_nan_from_the_fourth_call(model, b, need_forces):
        out = predict(model, b, need_forces)
        calls.append(1)
        return {**out, "forces": out["forces"] * float("nan")} if len(calls) > 3 else out

    monkeypatch.setattr(mol, "_predict", predict_nan_from_the_fourth_call)
    with pytest.raises(FloatingPointError, match=r"diverged at epoch \d+, step \d+: "
                                                 r".*forces_mse=nan.*lower lr \(this one: 0.001\)"):
        run_molecules(_cfg(rmd17_dir, epochs=5), tmp_path / "r")
    assert not (tmp_path / "r" / "metrics.json").exists()
