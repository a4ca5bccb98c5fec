"""End to end: a tiny n-body run through the CLI, its run folder, resume, and `symformer eval`."""

import json

import lightning as L
import pytest
import torch

import symformer
from symformer.cli.main import main
from symformer.train import resolve_config, run_training

TINY = ["--set", "n_train=50", "--set", "n_val=20", "--set", "n_test=20", "--batch-size", "25",
        "--no-progress", "--model.hidden", "4", "--set", "equivariance_systems=2"]


@pytest.fixture(scope="module")
def run_dir(nbody_cache, tmp_path_factory, toy_model):
    out = tmp_path_factory.mktemp("run") / "toy"
    code = main(["train", "nbody", "--model", toy_model, "--epochs", "2", "--out", str(out),
                 "--seed", "3", *TINY])
    assert code == 0
    return out


def test_run_folder_contents(run_dir, toy_model, capsys):
    for name in ("metrics.json", "loss_curve.png", "trajectory.png", "model.pt",
                 "checkpoints/last.ckpt", "checkpoints/best.ckpt"):
        assert (run_dir / name).is_file(), name
    m = json.loads((run_dir / "metrics.json").read_text())
    assert m["model"] == toy_model and m["epochs_run"] == 2 and m["seed"] == 3
    assert m["best_epoch"] in (1, 2)
    assert m["best_val_mse"] == min(r["val_mse"] for r in m["history"])
    assert 0 < m["test_mse"] < 10 and m["parameters"] == (2 * 4 + 4) + (4 + 1)
    assert m["equivariance_error"] < 1e-4  # the toy model is equivariant by construction
    assert m["config"]["n_train"] == 50 and m["config"]["model"] == {"hidden": 4}
    assert m["command"][:5] == ["symformer", "train", "nbody", "--model", toy_model]
    for png in ("loss_curve.png", "trajectory.png"):
        assert (run_dir / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_model_pt_loads_and_reproduces_test_mse(run_dir):
    from symformer.train import evaluate_nbody
    from symformer.data.nbody import load_split

    model = symformer.load(run_dir / "model.pt")
    assert model.checkpoint_extra["task"] == "nbody"
    data = load_split("test", n=20, dtype=torch.float32)
    m = json.loads((run_dir / "metrics.json").read_text())
    assert evaluate_nbody(model, data) == pytest.approx(m["test_mse"], rel=1e-5)


def test_eval_command(run_dir, capsys):
    capsys.readouterr()
    assert main(["eval", str(run_dir / "model.pt"), "--n", "20"]) == 0
    out = capsys.readouterr().out
    m = json.loads((run_dir / "metrics.json").read_text())
    assert "_toy_nbody" in out and f"{m['test_mse']:.4g}" in out


class _StopAfter(L.Callback):
    """Simulates an interruption after ``n`` epochs."""

    def __init__(self, n):
        self.n = n

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.current_epoch + 1 >= self.n:
            trainer.should_stop = True


@pytest.mark.parametrize("extra", [{}, {"ema_decay": 0.9, "scheduler": "cosine",
                                        "augment_rotations": True, "grad_clip": 1.0}],
                         ids=["plain", "ema-cosine-augment"])
def test_resume_ends_where_a_straight_run_ends(nbody_cache, tmp_path, toy_model, extra):
    cfg = resolve_config("nbody", toy_model, overrides={
        "epochs": 2, "n_train": 50, "n_val": 20, "n_test": 20, "batch_size": 25, "seed": 5,
        "progress_bar": False, "equivariance_systems": 0, "trajectory_systems": 1, **extra})
    straight = run_training(cfg, tmp_path / "straight")
    run_training(cfg, tmp_path / "resumed", callbacks=[_StopAfter(1)])
    first = json.loads((tmp_path / "resumed" / "metrics.json").read_text())
    assert first["epochs_run"] == 1
    resumed = run_training(cfg, tmp_path / "resumed", resume=True)
    assert resumed["epochs_run"] == 2
    for key in ("test_mse", "best_val_mse"):
        assert resumed[key] == pytest.approx(straight[key], rel=1e-6, abs=1e-9)
    assert resumed["best_epoch"] == straight["best_epoch"]
    for a, b in zip(straight["history"], resumed["history"]):
        assert a["val_mse"] == pytest.approx(b["val_mse"], rel=1e-6)
        assert a["train_mse"] == pytest.approx(b["train_mse"], rel=1e-6)
    # The first part's CSV log survives the resume; the continuation logs beside it.
    logs = tmp_path / "resumed" / "logs"
    assert (logs / "metrics.csv").is_file() and (logs / "resume-1" / "metrics.csv").is_file()
    sa = symformer.load(tmp_path / "straight" / "model.pt").state_dict()
    sb = symformer.load(tmp_path / "resumed" / "model.pt").state_dict()
    for k in sa:
        torch.testing.assert_close(sa[k], sb[k], rtol=1e-6, atol=1e-7)


def test_resume_without_checkpoint_is_a_clear_error(tmp_path, toy_model, capsys):
    code = main(["train", "nbody", "--model", toy_model, "--out", str(tmp_path / "none"),
                 "--resume", "--no-progress"])
    assert code == 2
    assert "last.ckpt" in capsys.readouterr().err


def test_existing_run_is_not_overwritten(run_dir, toy_model, capsys):
    before = (run_dir / "metrics.json").read_text()
    code = main(["train", "nbody", "--model", toy_model, "--epochs", "1", "--out", str(run_dir),
                 *TINY])
    assert code == 2
    assert "already holds a run" in capsys.readouterr().err
    assert (run_dir / "metrics.json").read_text() == before


def test_history_runs_past_the_best_epoch(nbody_cache, tmp_path, toy_model):
    # lr 0: every epoch ties, so the best checkpoint is epoch 1; the history (and the loss
    # curve) must still hold all epochs, not the state restored with the best checkpoint.
    out = tmp_path / "flat"
    assert main(["train", "nbody", "--model", toy_model, "--epochs", "3", "--lr", "0",
                 "--out", str(out), *TINY]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["best_epoch"] == 1
    assert m["epochs_run"] == 3 and [r["epoch"] for r in m["history"]] == [1, 2, 3]
    # last.ckpt follows every epoch (for --resume), best.ckpt stays at the best one.
    last = torch.load(out / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    best = torch.load(out / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=False)
    assert (last["epoch"], best["epoch"]) == (2, 0)


def test_a_diverging_run_stops_with_an_error(nbody_cache, tmp_path, toy_model, monkeypatch,
                                              capsys):
    # a loss that turns NaN must stop the run with the epoch and batch, not train on silently
    import symformer.train.module as module

    mse, calls = module.LOSSES["mse"], []

    def mse_going_nan(pred, target):
        calls.append(1)
        return mse(pred, target) * (float("nan") if len(calls) > 2 else 1.0)

    monkeypatch.setitem(module.LOSSES, "mse", mse_going_nan)
    code = main(["train", "nbody", "--model", toy_model, "--epochs", "3", "--out",
                 str(tmp_path / "nan"), *TINY])
    err = capsys.readouterr().err
    assert code == 2 and "symformer train: error: training diverged at epoch 2, batch 1: " \
        "the loss is nan" in err and "Traceback" not in err
