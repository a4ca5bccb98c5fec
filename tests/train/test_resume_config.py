"""--resume continues with the config the run folder was started with: omitted options come from
the folder, repeated ones must match, only how long / where it trains may change."""

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

from symformer.cli.main import main
from symformer.train import resolve_config, run_training
from symformer.train._run_config import (RUN_CONFIG, check_resume, save_run_config,
                                         stored_config)
from symformer.train.molecules import resolve_mol_config, run_molecules

FIX = Path(__file__).resolve().parents[1] / "fixtures"
TINY = ["--set", "n_train=50", "--set", "n_val=20", "--set", "n_test=20", "--batch-size", "25",
        "--no-progress", "--model.hidden", "4", "--set", "equivariance_systems=0",
        "--set", "trajectory_systems=1"]


@pytest.fixture(scope="module")
def one_epoch(nbody_cache, tmp_path_factory, toy_model):
    """A finished 1-epoch run with a non-default lr and seed (copied by each test that resumes)."""
    out = tmp_path_factory.mktemp("resume") / "run"
    assert main(["train", "nbody", "--model", toy_model, "--epochs", "1", "--lr", "0.002",
                 "--seed", "3", "--out", str(out), *TINY]) == 0
    return out


def _copy(run, tmp_path):
    dst = tmp_path / "run"
    shutil.copytree(run, dst)
    return dst


def test_the_run_folder_keeps_its_config(one_epoch):
    cfg = stored_config(one_epoch)
    assert cfg["lr"] == 0.002 and cfg["seed"] == 3 and cfg["n_train"] == 50
    assert cfg["model"] == {"hidden": 4} and cfg["epochs"] == 1
    assert not [p for p in one_epoch.iterdir() if p.name.startswith(".config")]  # no temp left


def test_resume_takes_omitted_options_from_the_folder(one_epoch, tmp_path, toy_model):
    run = _copy(one_epoch, tmp_path)
    # Only the folder and more epochs: lr, seed, sizes and the model width come from config.yaml
    # (the packaged defaults would be lr 5e-4, 3000 training systems, seed 0).
    assert main(["train", "nbody", "--model", toy_model, "--out", str(run), "--resume",
                 "--epochs", "2", "--no-progress"]) == 0
    m = json.loads((run / "metrics.json").read_text())
    assert m["epochs_run"] == 2
    assert (m["config"]["lr"], m["config"]["seed"], m["config"]["n_train"]) == (0.002, 3, 50)
    assert m["config"]["model"] == {"hidden": 4}
    assert stored_config(run)["epochs"] == 2  # the folder now records the longer plan


@pytest.mark.parametrize("change, key", [(["--lr", "0.01"], "lr"),
                                         (["--model.hidden", "8"], "model.hidden"),
                                         (["--seed", "4"], "seed")])
def test_resume_refuses_a_changed_option(one_epoch, tmp_path, toy_model, capsys, change, key):
    run = _copy(one_epoch, tmp_path)
    before = (run / "metrics.json").read_text()
    code = main(["train", "nbody", "--model", toy_model, "--out", str(run), "--resume",
                 "--epochs", "2", "--no-progress", *change])
    assert code == 2
    err = capsys.readouterr().err
    assert f"{key}:" in err and "--resume" in err
    assert (run / "metrics.json").read_text() == before  # nothing trained, nothing overwritten


def test_resume_accepts_the_same_options_again(one_epoch, tmp_path, toy_model):
    run = _copy(one_epoch, tmp_path)
    assert main(["train", "nbody", "--model", toy_model, "--epochs", "2", "--lr", "0.002",
                 "--seed", "3", "--out", str(run), "--resume", *TINY]) == 0


def test_run_training_leaves_the_environment_as_it_was(one_epoch, tmp_path, toy_model,
                                                       monkeypatch):
    monkeypatch.delenv("PL_GLOBAL_SEED", raising=False)
    monkeypatch.setenv("PL_SEED_WORKERS", "7")
    run = _copy(one_epoch, tmp_path)
    cfg = resolve_config("nbody", toy_model, config_file=run / RUN_CONFIG,
                         overrides={"epochs": 2})
    assert run_training(cfg, run, resume=True)["epochs_run"] == 2
    assert "PL_GLOBAL_SEED" not in os.environ and os.environ["PL_SEED_WORKERS"] == "7"


def test_run_training_checks_the_config_too(one_epoch, tmp_path, toy_model):
    run = _copy(one_epoch, tmp_path)
    cfg = resolve_config("nbody", toy_model, config_file=run / RUN_CONFIG,
                         overrides={"weight_decay": 0.1, "epochs": 2})
    with pytest.raises(ValueError, match="weight_decay: 1e-12 in the run, 0.1 now"):
        run_training(cfg, run, resume=True)


def test_resume_of_another_task_is_an_error(one_epoch, tmp_path, capsys):
    run = _copy(one_epoch, tmp_path)
    code = main(["train", "gravity", "--model", "gatr", "--out", str(run), "--resume"])
    assert code == 2 and "holds a 'nbody' run" in capsys.readouterr().err


def test_a_corrupt_config_file_is_named(tmp_path):
    (tmp_path / RUN_CONFIG).write_text("lr: [unclosed\n")
    with pytest.raises(ValueError, match=RUN_CONFIG):
        stored_config(tmp_path)
    (tmp_path / RUN_CONFIG).write_text("- a list\n")
    with pytest.raises(ValueError, match="mapping"):
        check_resume(tmp_path, {"lr": 1.0})


def test_saved_config_round_trips(tmp_path):
    cfg = {"task": "nbody", "lr": 1e-12, "grad_clip": None, "model": {"hidden": 4,
           "radial_hidden": (64, 64)}, "deterministic": "warn"}
    path = save_run_config(tmp_path, cfg)
    assert yaml.safe_load(path.read_text()) == {**cfg, "model": {"hidden": 4,
                                                                "radial_hidden": [64, 64]}}
    check_resume(tmp_path, cfg)  # tuples and lists compare equal
    check_resume(tmp_path, {**cfg, "epochs": 7})  # absent before, and resumable
    with pytest.raises(ValueError, match="model.radial_hidden"):
        check_resume(tmp_path, {**cfg, "model": {"hidden": 4, "radial_hidden": [32]}})


def test_molecular_runs_keep_their_config(tmp_path, capsys):
    data = tmp_path / "rmd17"
    data.mkdir()
    for split in ("train", "test"):
        shutil.copy(FIX / "rmd17_ethanol_train_01.npz", data / f"rmd17_ethanol_{split}_01.npz")
    over = {"data_dir": str(data), "n_val": 3, "batch_size": 4, "epochs": 1, "warmup_steps": 1,
            "progress_bar": False, "lr": 2e-3, "model.hidden": 8, "model.n_layers": 1,
            "model.heads": 2, "model.num_rbf": 4}
    run_molecules(resolve_mol_config("rmd17", "torchmd_et_potential", over), tmp_path / "m")
    assert stored_config(tmp_path / "m")["lr"] == 2e-3
    with pytest.raises(ValueError, match="lr: 0.002 in the run, 0.001 now"):
        run_molecules(resolve_mol_config("rmd17", "torchmd_et_potential",
                                         {**over, "lr": 1e-3, "epochs": 2}),
                      tmp_path / "m", resume=True)
    argv = ["train", "rmd17", "--model", "torchmd_et_potential", "--out", str(tmp_path / "m"),
            "--resume", "--epochs", "2"]
    assert main(argv) == 0
    m = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert m["epochs_run"] == 2
