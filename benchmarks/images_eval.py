"""Evaluate trained image classifiers on a larger test subset than their training run used.

For each run name, loads ``<runs>/<name>.pt`` (written by ``symformer.train.images``), classifies
the first ``--n-test`` images of the dataset's test split (projective MNIST: row ``j * 10000 + i``
is copy ``j`` of test digit ``i``, so 80,000 is the whole set) and writes
``<runs>/<name>.test_full.json``; ``benchmarks/images_results.py`` adds it to the tables.

Run: ``python benchmarks/images_eval.py --runs runs/images --names projective_mnist_cnn``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

import symformer
from symformer.data.image_variants import load_image_dataset
from symformer.train.images import predict

__all__ = ["evaluate", "main"]


def evaluate(path: Path, n_test: int | None, data_root: str | None = None) -> dict:
    """Test accuracy of the checkpoint ``path`` on the first ``n_test`` test images."""
    model = symformer.load(path)
    dataset = model.checkpoint_extra["dataset"]
    x, y = load_image_dataset(dataset, "test", root=data_root)
    if n_test is not None:
        x, y = x[:n_test], y[:n_test]
    t0 = time.time()
    correct = predict(model, x) == y
    return {"checkpoint": str(path), "dataset": dataset, "n_test": len(x),
            "test_acc": float(correct.double().mean()), "errors": int((~correct).sum()),
            "eval_s": time.time() - t0, "threads": torch.get_num_threads()}


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", required=True)
    p.add_argument("--names", nargs="+", required=True)
    p.add_argument("--n-test", type=int, default=None, help="default: the whole test split")
    p.add_argument("--data-root", default=None)
    a = p.parse_args(argv)
    out = []
    for name in a.names:
        r = evaluate(Path(a.runs) / f"{name}.pt", a.n_test, a.data_root)
        r["command"] = "python benchmarks/images_eval.py " + " ".join(
            argv if argv is not None else sys.argv[1:])
        (Path(a.runs) / f"{name}.test_full.json").write_text(json.dumps(r, indent=2) + "\n")
        print(json.dumps(r), flush=True)
        out.append(r)
    return out


if __name__ == "__main__":
    main()
