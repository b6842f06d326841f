# bioss_nb: the two commands are `make demo` and `make test`; each sets up .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
FLAGS  ?=
OUT    ?= demo_out
WORKERS ?= 2
# one thread per notebook worker: two workers with two threads each on two cores slow small ops a hundredfold
NB_THREADS ?= 1

.PHONY: install lock demo test lab docs bench sync-check nbtest pytest clean

install: $(STAMP)

# pyproject.toml states the ranges the code needs; constraints.txt pins the tested set (torch 2.14.1, torchvision 0.29.1, ...)
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]"
	@touch $(STAMP)

## Re-pin constraints.txt to what .venv holds now (after changing dependencies and testing them).
lock:
	$(BIN)/python -m pip freeze --exclude-editable --disable-pip-version-check | $(BIN)/python tools/lock.py constraints.txt

## The main job on the embedded default data (mnist5k).
demo: $(STAMP)
	$(BIN)/bioss-nb demo --out $(OUT)

## The whole test suite: notebook hygiene, library sync, notebook tests, pytest.
test: $(STAMP)
	bash tools/check_sync.sh $(BIN)/nbdev-clean
	bash tools/check_sync.sh $(BIN)/nbdev-export
	OMP_NUM_THREADS=$(NB_THREADS) $(BIN)/nbdev-test --n-workers $(WORKERS) --flags "$(FLAGS)" --timing
	BIOSS_TEST_FLAGS="$(FLAGS)" $(BIN)/python -m pytest tests/ -q -p no:cacheprovider

## JupyterLab on the course notebooks.
lab: $(STAMP)
	$(BIN)/jupyter lab nbs/ $$( [ "$$(id -u)" = 0 ] && echo --allow-root )

## The documentation site (nbdev-docs with Quarto; Sphinx without it).
docs: $(STAMP)
	$(BIN)/python tools/build_site.py

## Speed and memory against the usual alternatives (not part of `make test`).
bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf _docs _proc _site $(OUT)
