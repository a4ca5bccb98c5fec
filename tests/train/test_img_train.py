"""The compact image training loop, its metrics and checkpoints."""

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import symformer
from symformer.models import create
from symformer.train.images import (accuracy, main, predict, shift_consistency, to_float,
                                    train_image_classifier)

FIXTURE = Path(__file__).parents[1] / "fixtures" / "mnist_small.npz"


def _mnist_root(folder: Path) -> Path:
    data = np.load(FIXTURE)
    folder.mkdir(parents=True)
    for stem, key in (("train-images-idx3-ubyte", "train_images"),
                      ("train-labels-idx1-ubyte", "train_labels"),
                      ("t10k-images-idx3-ubyte", "test_images"),
                      ("t10k-labels-idx1-ubyte", "test_labels")):
        arr = data[key]
        head = bytes([0, 0, 8, arr.ndim]) + b"".join(int(d).to_bytes(4, "big")
                                                     for d in arr.shape)
        with gzip.open(folder / f"{stem}.gz", "wb") as f:
            f.write(head + arr.astype(np.uint8).tobytes())
    return folder


def test_train_writes_checkpoint_and_metrics(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMFORMER_CACHE", str(tmp_path / "cache"))
    root = _mnist_root(tmp_path / "mnist")
    m = train_image_classifier("mnist", "vit", config={"dim": 16, "depth": 1, "heads": 1},
                               epochs=2, batch_size=64, lr=3e-3, out=tmp_path / "out",
                               data_root=str(root), progress=False)
    assert m["epochs_run"] == 2 and len(m["history"]) == 2 and m["n_train"] == 270
    assert 0.0 <= m["test_acc"] <= 1.0 and m["parameters"] > 0
    saved = json.loads((tmp_path / "out" / "mnist_vit.json").read_text())
    assert saved["test_acc"] == m["test_acc"]
    model = symformer.load(tmp_path / "out" / "mnist_vit.pt")
    assert model.checkpoint_extra["test_acc"] == pytest.approx(m["test_acc"])
    from symformer.data.image_variants import load_image_dataset
    x, y = load_image_dataset("mnist", "test", root=root)
    assert accuracy(model, x, y) == pytest.approx(m["test_acc"])


def test_time_budget_stops_training(tmp_path):
    root = _mnist_root(tmp_path / "mnist")
    m = main(["--dataset", "shifted_mnist", "--model", "cnn", "--config", '{"channels": 4}',
              "--epochs", "50", "--max-minutes", "0.001", "--out", str(tmp_path / "o"),
              "--data-root", str(root), "--no-progress"])
    assert m["epochs_run"] < 50 and m["command"].startswith("python -m symformer.train.images")


def test_polyphase_predictions_are_shift_consistent():
    data = np.load(FIXTURE)
    x = torch.from_numpy(data["test_images"])
    model = create("polyphase_vit")
    assert shift_consistency(model, x, n_pairs=2) == 1.0
    assert predict(model, x).shape == (100,)
    assert to_float(x[:2]).shape == (2, 1, 28, 28) and to_float(x).max() <= 1.0


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="epochs"):
        train_image_classifier("mnist", "vit", epochs=0, out=tmp_path)
    with pytest.raises(ValueError, match="device: expected cpu, cuda"):
        train_image_classifier("mnist", "vit", device="tpu", out=tmp_path)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            train_image_classifier("mnist", "vit", device="cuda", out=tmp_path)


def test_a_diverging_run_stops_with_an_error(tmp_path, monkeypatch):
    import symformer.train.images as ti
    root = _mnist_root(tmp_path / "mnist")
    ce, calls = ti.F.cross_entropy, []

    def cross_entropy_going_nan(*args, **kwargs):
        calls.append(1)
        return ce(*args, **kwargs) * (float("nan") if len(calls) > 6 else 1.0)

    monkeypatch.setattr(ti.F, "cross_entropy", cross_entropy_going_nan)
    with pytest.raises(FloatingPointError, match=r"diverged at epoch 2, step 2: the loss is nan"):
        train_image_classifier("mnist", "cnn", config={"channels": 4}, epochs=3, batch_size=64,
                               out=tmp_path / "o", data_root=str(root), progress=False,
                               device="auto")


def test_resume_name_smoothing_and_channels_last(tmp_path, monkeypatch):
    import symformer.train.images as ti
    root = _mnist_root(tmp_path / "mnist")

    def args(out):
        return ["--dataset", "shifted_mnist", "--model", "cnn", "--config",
                '{"widths": [4, 8], "dropout": 0.2}', "--batch-size", "64", "--epochs", "3",
                "--out", str(tmp_path / out), "--data-root", str(root), "--no-progress",
                "--name", "small_cnn", "--label-smoothing", "0.1", "--channels-last",
                "--seed", "3", "--resume"]
    full = main(args("a"))
    assert (tmp_path / "a" / "small_cnn.pt").is_file() and full["label_smoothing"] == 0.1
    assert full["channels_last"] and full["epochs_run"] == 3
    # interrupt a second run during its second epoch's validation, then resume it
    calls, real = [], ti.accuracy

    def interrupted(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **k)
    monkeypatch.setattr(ti, "accuracy", interrupted)
    with pytest.raises(KeyboardInterrupt):
        main(args("b"))
    monkeypatch.setattr(ti, "accuracy", real)
    st = torch.load(tmp_path / "b" / "small_cnn.state.pt", weights_only=True)
    assert st["epoch"] == 1 and not st["done"]
    resumed = main(args("b"))
    assert [h["valid_acc"] for h in resumed["history"]] == [h["valid_acc"]
                                                            for h in full["history"]]
    assert [h["train_loss"] for h in resumed["history"]] == pytest.approx(
        [h["train_loss"] for h in full["history"]], rel=1e-6)
    assert resumed["test_acc"] == full["test_acc"] and resumed["steps"] == full["steps"]
    # resuming a finished run only re-evaluates
    again = main(args("b"))
    assert again["steps"] == full["steps"] and again["test_acc"] == full["test_acc"]
    # a resumed run keeps what it trains: another learning rate is an error naming it
    with pytest.raises(ValueError, match="lr: 0.002 in the run, 0.01 now"):
        main(args("b") + ["--lr", "0.01"])
