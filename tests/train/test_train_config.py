"""Config layering: defaults <- YAML <- overrides, with unknown keys rejected by name."""

import pytest
from hypothesis import given, settings, strategies as st

from symformer.train.config import (DEFAULTS, TASKS, apply_overrides, default_config_path,
                                    parse_overrides, resolve_config)

pytestmark = pytest.mark.usefixtures("toy_model")


def test_parse_overrides_forms():
    out = parse_overrides(["--lr", "1e-3", "--model.hidden=16", "--batch-size", "50",
                           "--augment-rotations", "--grad_clip", "null", "epochs=7"])
    assert out == {"lr": 1e-3, "model.hidden": 16, "batch_size": 50,
                   "augment_rotations": True, "grad_clip": None, "epochs": 7}


def test_parse_overrides_rejects_bare_words():
    with pytest.raises(ValueError, match="'oops'"):
        parse_overrides(["oops"])


def test_types_follow_defaults():
    cfg = apply_overrides(DEFAULTS, {"lr": 1, "epochs": 3.0})
    assert isinstance(cfg["lr"], float) and cfg["lr"] == 1.0
    assert isinstance(cfg["epochs"], int) and cfg["epochs"] == 3
    with pytest.raises(ValueError, match="'epochs'"):
        apply_overrides(DEFAULTS, {"epochs": "many"})
    with pytest.raises(ValueError, match="'augment_rotations'"):
        apply_overrides(DEFAULTS, {"augment_rotations": "sometimes"})
    with pytest.raises(ValueError, match="'optimizer'"):
        apply_overrides(DEFAULTS, {"optimizer": "sgd"})


def test_unknown_keys_are_named():
    with pytest.raises(ValueError, match="'lrr'"):
        resolve_config("nbody", "_toy_nbody", overrides={"lrr": 1e-3})
    with pytest.raises(ValueError, match="'hiden'"):
        resolve_config("nbody", "_toy_nbody", overrides={"model.hiden": 4})
    with pytest.raises(ValueError, match="'no_such_model'"):
        resolve_config("nbody", "no_such_model")
    with pytest.raises(ValueError, match="'chess'"):
        resolve_config("chess", "_toy_nbody")


def test_yaml_then_overrides(tmp_path):
    f = tmp_path / "cfg.yaml"
    f.write_text("epochs: 5\nlr: 2.0e-3\nmodel:\n  hidden: 4\n")
    cfg = resolve_config("nbody", "_toy_nbody", config_file=f,
                         overrides={"lr": 1e-4, "model.hidden": 6})
    assert cfg["epochs"] == 5 and cfg["lr"] == 1e-4 and cfg["model"] == {"hidden": 6}
    assert cfg["model_name"] == "_toy_nbody" and cfg["batch_size"] == DEFAULTS["batch_size"]
    f.write_text("epochz: 5\n")
    with pytest.raises(ValueError, match="'epochz'"):
        resolve_config("nbody", "_toy_nbody", config_file=f)
    with pytest.raises(FileNotFoundError):
        resolve_config("nbody", "_toy_nbody", config_file=tmp_path / "missing.yaml")


def test_packaged_configs_are_valid():
    from symformer.models import available

    found = set()
    for task in TASKS:
        for name in available("model"):
            path = default_config_path(task, name)
            if path is not None:
                cfg = resolve_config(task, name)
                assert cfg["model_name"] == name and cfg["task"] == task
                found.add(task)
    assert found == set(TASKS)  # every task has packaged configs


def test_gravity_is_a_task_of_its_own(tmp_path):
    from symformer.train.run import gravity_config

    cfg = resolve_config("gravity", "gatr", overrides={"epochs": 2})
    assert cfg["task"] == "gravity" and cfg["epochs"] == 2
    assert cfg["n_train"] == 1000 and cfg["model"]["blocks"] == 4  # configs/gravity/gatr.yaml
    assert resolve_config("nbody", "gatr")["n_train"] == 3000  # configs/nbody/gatr.yaml
    assert gravity_config("gatr", overrides={"epochs": 2}) == cfg
    f = tmp_path / "cfg.yaml"
    f.write_text("n_train: 16\nmodel:\n  hidden: 4\n")
    cfg = resolve_config("gravity", "_toy_nbody", config_file=f)
    assert cfg["task"] == "gravity" and cfg["n_train"] == 16 and cfg["model"] == {"hidden": 4}


def test_the_task_is_not_a_config_key_to_change(tmp_path):
    f = tmp_path / "cfg.yaml"
    f.write_text("task: gravity\n")
    with pytest.raises(ValueError, match="task"):
        resolve_config("nbody", "_toy_nbody", config_file=f)
    with pytest.raises(ValueError, match="task"):
        resolve_config("gravity", "_toy_nbody", overrides={"task": "nbody"})
    with pytest.raises(ValueError, match="'task'"):
        resolve_config("nbody", "_toy_nbody", overrides={"task": "chess"})
    f.write_text("task: nbody\n")  # naming the run's own task is fine
    assert resolve_config("nbody", "_toy_nbody", config_file=f)["task"] == "nbody"


@settings(max_examples=20, deadline=None)
@given(lr=st.floats(1e-6, 1.0), epochs=st.integers(1, 10_000), seed=st.integers(0, 2**31))
def test_overrides_round_trip_through_strings(lr, epochs, seed):
    parsed = parse_overrides(["--lr", repr(lr), "--epochs", str(epochs), "--seed", str(seed)])
    cfg = apply_overrides(DEFAULTS, parsed)
    assert (cfg["lr"], cfg["epochs"], cfg["seed"]) == (lr, epochs, seed)
