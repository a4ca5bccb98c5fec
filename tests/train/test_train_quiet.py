"""Training runs drop Lightning's litlogger tip and LeafSpec deprecation warning, nothing else."""

import logging
import warnings

import pytest
from lightning.pytorch.utilities.rank_zero import rank_zero_info, rank_zero_module

from symformer.train.run import _quiet_lightning, gravity_config, run_training

TIP = ("💡 Tip: For seamless cloud logging and experiment tracking, try installing "
       "[litlogger](https://pypi.org/project/litlogger/) to enable LitLogger.")
LEAFSPEC = ("`isinstance(treespec, LeafSpec)` is deprecated, use `isinstance(treespec, TreeSpec) "
            "and treespec.is_leaf()` instead.")


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture
def lightning_log():
    """Messages of Lightning's rank_zero_info, after the logger's own filters."""
    handler = _Records()
    log = rank_zero_module.log
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    yield handler.messages
    log.removeHandler(handler)
    log.setLevel(level)


def test_only_the_two_are_silenced(lightning_log):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with _quiet_lightning():
            rank_zero_info(TIP)
            rank_zero_info("another message")
            warnings.warn(LEAFSPEC, FutureWarning)
            warnings.warn("another future warning", FutureWarning)
            warnings.warn(LEAFSPEC, UserWarning)  # same text, other category: kept
        warnings.warn(LEAFSPEC, FutureWarning)  # the filters go with the context
        rank_zero_info(TIP)
    assert lightning_log == ["another message", TIP]
    assert [(str(w.message), w.category) for w in caught] == [
        ("another future warning", FutureWarning), (LEAFSPEC, UserWarning),
        (LEAFSPEC, FutureWarning)]


def test_a_training_run_shows_neither(tmp_path, toy_model, lightning_log):
    cfg = tmp_path / "toy.yaml"
    cfg.write_text("epochs: 1\nbatch_size: 8\nn_train: 16\nn_val: 8\nn_test: 8\n"
                   "equivariance_systems: 1\ntrajectory_systems: 1\nprogress_bar: false\n")
    config = gravity_config(toy_model, config_file=cfg)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_training(config, tmp_path / "run", command=["test"])
    assert not any("litlogger" in m for m in lightning_log)
    assert any("max_epochs=1" in m for m in lightning_log)  # other Lightning messages still show
    assert not any("LeafSpec" in str(w.message) for w in caught)
