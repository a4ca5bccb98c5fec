# Two commands do all the set-up on a fresh machine:
#   make demo   - the main job (creates .venv, installs symformer, runs it)
#   make test   - the test suite (creates .venv, installs symformer[dev], runs pytest)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test install clean

$(BIN)/symformer: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	# The CPU build of torch first: an unpinned torch would pull a multi-GB CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e ".[dev]"
	touch $@

install: $(BIN)/symformer

# A short real training run: the flagship symformer3d on the charged N-body benchmark (a few
# minutes on 2 cores), then the results table; the run folder (runs/nbody/symformer3d-<time>)
# holds metrics.json, loss_curve.png, trajectory.png and model.pt.
demo: install
	OMP_NUM_THREADS=1 $(BIN)/symformer train nbody --model symformer3d --epochs 12

test: install
	# One thread: the suite is many tiny ops, where thread hand-offs cost more than they give.
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest tests

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
