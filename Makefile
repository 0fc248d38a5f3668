# make run   — set up .venv and execute the whole notebook series (results in build/notebooks/)
# make test  — set up .venv and run the unit tests and the notebooks (nbval); the committed
#              notebook outputs are the CPU path's, so the tests hide any GPU
# make check TASK=T04_4 — the task tests of one task (TASK=T04: of notebook 04)
# make student — write the student edition to build/student/
# make site  — the executed notebooks as a static HTML site to read offline: build/site/index.html
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The pinned CPU build of torch lies on disk here; on a GPU box pip takes the CUDA build of it.
TORCH  ?= torch==2.13.0
NOTEBOOKS := $(sort $(wildcard notebooks/*.ipynb))

.PHONY: setup run test check lab data notebooks student site clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	$(BIN)/python -c "import matplotlib.pyplot"  # builds the font cache once, not inside a notebook
	touch $@

run: setup
	mkdir -p build/notebooks
	$(BIN)/jupyter nbconvert --to notebook --execute --ExecutePreprocessor.timeout=1800 \
	    --output-dir build/notebooks $(NOTEBOOKS)
	@echo "Executed $(words $(NOTEBOOKS)) notebooks into build/notebooks/"

test: setup
	env -u MPLBACKEND CUDA_VISIBLE_DEVICES= $(BIN)/python -m pytest tests $(NOTEBOOKS) --nbval --nbval-current-env \
	    --nbval-sanitize-with notebooks/sanitize.cfg -p no:cacheprovider

# The task tests of one task or notebook, as students run them: make check TASK=T04_4 (or TASK=T04)
check: setup
	@test -n "$(TASK)" || (echo "usage: make check TASK=T04_4 (or TASK=T04)"; exit 2)
	$(BIN)/python -m pytest tests/tasks -p no:cacheprovider -m "$(TASK)"

lab: setup
	$(BIN)/jupyter lab notebooks/

data: setup
	$(BIN)/python -m scratchnet data

# Re-execute the committed notebooks in place (after changing code or a notebook).
notebooks: setup
	env -u MPLBACKEND CUDA_VISIBLE_DEVICES= $(BIN)/jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.timeout=1800 \
	    --ExecutePreprocessor.kernel_name=python3 $(NOTEBOOKS)
	$(BIN)/python tools/strip_timing.py $(NOTEBOOKS)

# The student edition: the package with the tasks blanked, notebooks cleared (build/student/).
student: setup
	$(BIN)/python -m scratchnet handout build/student

# The committed (executed) notebooks as HTML pages with a contents page, math by a local MathJax,
# readable without a kernel or a network (nothing is executed: re-run `make notebooks` first).
site: setup
	$(BIN)/python tools/build_site.py --notebooks notebooks --out build/site

clean:
	rm -rf build .pytest_cache .hypothesis
