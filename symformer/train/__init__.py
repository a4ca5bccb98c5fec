"""Training: Lightning module, the N-body and molecular (rMD17, QM9, ASE files) tasks, configs,
callbacks, run folders.

Needs the ``train`` extra (Lightning, PyYAML, matplotlib)::

    from symformer.train import resolve_config, run_training
    cfg = resolve_config("nbody", "egnn", overrides={"epochs": 10})
    metrics = run_training(cfg, "runs/nbody/egnn-demo")
"""

from .config import DEFAULTS, TASKS, apply_overrides, parse_overrides, resolve_config
from .evaluate import RESULT_HEADERS, equivariance_error_of, evaluate_nbody, result_row
from .module import RegressionModule
from .molecules import MOL_TASKS, evaluate_potential, resolve_mol_config, run_molecules
from .nbody import NBodyDataModule
from .run import default_run_dir, run_training

__all__ = ["DEFAULTS", "TASKS", "apply_overrides", "parse_overrides", "resolve_config",
           "RESULT_HEADERS", "equivariance_error_of", "evaluate_nbody", "result_row",
           "RegressionModule", "NBodyDataModule", "default_run_dir", "run_training",
           "MOL_TASKS", "resolve_mol_config", "run_molecules", "evaluate_potential"]
