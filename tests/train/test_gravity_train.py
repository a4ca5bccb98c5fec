"""The gravity task end to end: configs, data module, `symformer train gravity`, `symformer eval`."""

import json

import pytest
import torch

import symformer
from symformer.cli.main import main
from symformer.train.nbody import GravityDataModule, gravity_systems
from symformer.train.run import evaluate_gravity, gravity_config


@pytest.mark.parametrize("model", ["gatr", "transformer", "symformer3d"])
def test_packaged_gravity_configs_resolve(model):
    import symformer.models  # noqa: F401  (registers the models)

    cfg = gravity_config(model, overrides={"epochs": 3})
    assert cfg["task"] == "gravity" and cfg["model_name"] == model and cfg["epochs"] == 3
    assert cfg["n_train"] == 1000 and cfg["batch_size"] == 64  # the paper's 1% data point
    if model == "symformer3d":  # charged-particle priors are off for unequal masses
        assert cfg["model"]["momentum"] is False and cfg["model"]["charge_flip"] is False


def test_gravity_config_errors(toy_model):
    with pytest.raises(ValueError, match="no gravity config"):
        gravity_config(toy_model)
    with pytest.raises(ValueError, match="unknown model config key"):
        gravity_config("gatr", overrides={"model.nope": 1})


def test_data_module_masses_in_the_charges_slot():
    dm = GravityDataModule(n_train=8, n_val=4, n_test=4, n_ood=3, n_objects=2, batch_size=4)
    raw = gravity_systems("train", 8)
    assert torch.equal(dm.split("train")["charges"], raw["charges"])
    assert dm.split("train")["charges"].min() >= 0.01  # masses
    assert dm.split("ood")["pos"].shape == (3, 4, 3)
    assert dm.split("objects")["pos"].shape == (2, 6, 3)
    batch = next(iter(dm._loader("val", shuffle=False)))
    assert batch["pos"].shape == (16, 3) and batch["batch"].max() == 3
    with pytest.raises(ValueError, match="split"):
        dm.split("nope")
    with pytest.raises(ValueError, match="split"):
        gravity_systems("valid", 2)


@pytest.fixture(scope="module")
def gravity_run(tmp_path_factory, toy_model):
    root = tmp_path_factory.mktemp("gravity")
    cfg = root / "toy.yaml"
    cfg.write_text("epochs: 2\nbatch_size: 16\nn_train: 32\nn_val: 16\nn_test: 16\n"
                   "equivariance_systems: 2\nmodel:\n  hidden: 4\n")
    out = root / "run"
    code = main(["train", "gravity", "--model", toy_model, "--config", str(cfg), "--out",
                 str(out), "--no-progress", "--seed", "2"])
    assert code == 0
    return out


def test_train_gravity_run_folder(gravity_run, toy_model):
    m = json.loads((gravity_run / "metrics.json").read_text())
    assert m["task"] == "gravity" and m["model"] == toy_model and m["epochs_run"] == 2
    for key in ("test_mse", "ood_mse", "objects_mse"):
        assert 0 < m[key] < 1, key
    assert m["command"][:3] == ["symformer", "train", "gravity"]
    model = symformer.load(gravity_run / "model.pt")
    assert model.checkpoint_extra["task"] == "gravity"
    from symformer.train import evaluate_nbody

    assert evaluate_nbody(model, gravity_systems("ood", 16)) == pytest.approx(m["ood_mse"],
                                                                               rel=1e-5)


def test_eval_gravity_checkpoint(gravity_run, capsys, monkeypatch):
    ckpt = str(gravity_run / "model.pt")
    loads = []
    real_load = symformer.load
    monkeypatch.setattr(symformer, "load", lambda *a, **k: loads.append(a) or real_load(*a, **k))
    capsys.readouterr()
    assert main(["eval", ckpt, "--n", "16"]) == 0
    assert len(loads) == 1  # the task is read from the one loaded checkpoint
    out = capsys.readouterr().out
    m = json.loads((gravity_run / "metrics.json").read_text())
    assert "ood MSE" in out and "objects MSE" in out and f"{m['test_mse']:.4g}" in out
    assert main(["eval", ckpt, "--n", "0"]) == 2
    assert "--n must be positive" in capsys.readouterr().err


def test_eval_gravity_one_split_and_task_option(gravity_run, capsys):
    ckpt = str(gravity_run / "model.pt")
    m = json.loads((gravity_run / "metrics.json").read_text())
    capsys.readouterr()
    assert main(["eval", ckpt, "--split", "ood", "--n", "16", "--task", "gravity"]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert "ood MSE" in header and "test MSE" not in header and "objects MSE" not in header
    # gravity-only splits are user errors on the other tasks
    assert main(["eval", ckpt, "--task", "nbody", "--split", "ood"]) == 2
    assert "gravity split" in capsys.readouterr().err
    model = symformer.load(ckpt)
    row = evaluate_gravity(model, splits=("ood",), n=16, equivariance_systems=2)
    assert list(row) == ["model", "ood MSE", "published (test)", "equivariance error"]
    assert row["ood MSE"] == pytest.approx(m["ood_mse"], rel=1e-5)
    assert row["equivariance error"] < 1e-4
    with pytest.raises(ValueError, match="n must be positive"):
        evaluate_gravity(model, n=0)


def test_train_gravity_user_errors(toy_model, tmp_path, capsys):
    assert main(["train", "gravity", "--model", toy_model, "--out", str(tmp_path / "x")]) == 2
    assert "no gravity config" in capsys.readouterr().err
    assert main(["train", "gravity", "--model", "gatr", "--resume"]) == 2
