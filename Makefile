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

.PHONY: install demo test lab docs bench sync-check nbtest pytest clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	@touch $(STAMP)

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
	$(BIN)/jupyter lab nbs/

## The documentation site (nbdev-docs with Quarto; nbconvert without it).
docs: $(STAMP)
	$(BIN)/python tools/build_site.py

## Speed and memory against the usual alternatives (not part of `make test`).
bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf _docs _proc _site $(OUT)
