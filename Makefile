# mlcc: common tasks. `make setup` once on a fresh machine, then `make test`.
# On a Debian system Python, `make setup` installs mlcc into .venv
# (scripts/setup.sh); putting it first on PATH is harmless when it is absent.
export PATH := $(CURDIR)/.venv/bin:$(PATH)
PYTHON ?= python3

.PHONY: setup test test-fast demo quickstart corpus

setup:
	bash scripts/setup.sh

# The README's test command: installs what the tests need, then runs them all.
test: setup
	$(PYTHON) -m pytest -q -n 2 --durations=15 tests

# Unit tests and driver comparisons only (no real-project builds).
test-fast:
	$(PYTHON) -m pytest -q -n 2 -m "not projects" tests

# Compile the demo sources (scripts/demo/*.c) with clang-19 and mlcc at -Oz and -Os:
# sizes, wall times and the pipeline the model chose for each file.
demo:
	$(PYTHON) scripts/demo.py

# One command on a fresh Debian/Ubuntu machine: install everything, run the demo.
quickstart:
	bash scripts/setup.sh --demo

# Build the projects of mlcc/learn/data/corpus-projects.toml with mlcc in collect
# mode (resumable; data under $MLCC_DATA, default ~/.cache/mlcc) and write
# models/corpus-manifest.json (mlcc/learn/corpus/).
corpus:
	$(PYTHON) -m mlcc.learn.corpus collect && $(PYTHON) -m mlcc.learn.corpus index

# The size model, end to end: corpus -> search -> mined long searches (guided by
# the bundled model) -> candidates -> the tuned default (which joins the
# candidates) -> labels -> training -> ONNX -> report.
# Resumable: measurements already in models/data/ are reused; `make model
# FRESH=1` starts the tables anew.
model: corpus
ifeq ($(FRESH),1)
	rm -f models/data/measurements-Oz.jsonl.gz models/data/features-v*.jsonl.gz models/data/candidates-Oz.json models/data/default-Oz.json
endif
	$(PYTHON) -m mlcc.learn.search explore
	$(PYTHON) -m mlcc.learn.search crosscheck
	$(PYTHON) -m mlcc.learn.search walk
	$(PYTHON) -m mlcc.learn.search crosscheck --sample walk --per-unit 2 --limit 80
	$(PYTHON) -m mlcc.learn.search knobs
	$(PYTHON) -m mlcc.learn.search crosscheck --knobs --per-unit 2 --limit 24
	$(PYTHON) -m mlcc.learn.search mine
	$(PYTHON) -m mlcc.learn.search mine-crosscheck
	$(PYTHON) -m mlcc.learn.candidates choose --wrapped-only
	$(PYTHON) -m mlcc.learn.candidates tune-default
	$(PYTHON) -m mlcc.learn.candidates choose --wrapped-only
	$(PYTHON) -m mlcc.learn.search label --split validation
	$(PYTHON) -m mlcc.learn.search label --split train
	$(PYTHON) -m mlcc.learn.train model
	$(PYTHON) -m mlcc.learn.report model

# The -Os model: the same steps on an -Os corpus derived from the -Oz one (each unit's
# front end rerun at -Os: mlcc/learn/corpus/derive.py), walks started from the -Oz
# candidate curves (so after `make model`); candidates only among pipelines that
# wrap default<Os>, so that -Os keeps -Os's inlining (docs/MODEL.md); then the code
# generation twins of the trial candidates (mlcc/learn/candidates/codegen_twins.py), labeled too.
# Bundled since 2026-11-29 (docs/MODEL.md, docs/RELIABILITY.md campaign 11).
OS_MODEL ?= mlcc/models/size-Os.onnx
.PHONY: model-Os
model-Os: corpus
	$(PYTHON) -m mlcc.learn.corpus derive --level s
	MLCC_LEARN_LEVEL=s $(PYTHON) -m mlcc.learn.search walk --steps 12
	MLCC_LEARN_LEVEL=s $(PYTHON) -m mlcc.learn.search knobs
	MLCC_LEARN_LEVEL=s $(PYTHON) -m mlcc.learn.search crosscheck --knobs --per-unit 2 --limit 24
	MLCC_LEARN_LEVEL=s $(PYTHON) -m mlcc.learn.search mine
	MLCC_LEARN_LEVEL=s $(PYTHON) -m mlcc.learn.search mine-crosscheck
	MLCC_LEARN_LEVEL=s $(PYTHON) -m mlcc.learn.candidates choose --wrapped-only
	MLCC_LEARN_LEVEL=s $(PYTHON) -m mlcc.learn.candidates tune-default
	MLCC_LEARN_LEVEL=s $(PYTHON) -m mlcc.learn.candidates choose --wrapped-only
	MLCC_LEARN_LEVEL=s $(PYTHON) -m mlcc.learn.search label --split validation
	MLCC_LEARN_LEVEL=s $(PYTHON) -m mlcc.learn.search label --split train
	MLCC_LEARN_LEVEL=s $(PYTHON) -m mlcc.learn.candidates codegen-twins
	MLCC_LEARN_LEVEL=s $(PYTHON) -m mlcc.learn.search label --split validation
	MLCC_LEARN_LEVEL=s $(PYTHON) -m mlcc.learn.search label --split train
	MLCC_LEARN_LEVEL=s $(PYTHON) -m mlcc.learn.train model --out $(OS_MODEL)
	$(MAKE) report

report:
	$(PYTHON) -m mlcc.learn.report model
	if [ -f $(OS_MODEL) ]; then MLCC_LEARN_LEVEL=s $(PYTHON) -m mlcc.learn.report model --model $(OS_MODEL); fi

# Per-target models (docs/TARGETS.md, "Per-target models"): on each target's corpus
# (`corpus derive --target`) after its `tune-default`, candidates from its default and
# trial sets, every candidate labeled, 3 seeds trained. A model is written to
# mlcc/models/ only when it beats the target's default by 0.5 points on validation
# (train.beats_default); none does today. Resumable: labels measure only what is missing.
TARGET_MODELS ?= thumbv7m riscv32 thumbv6m aarch64
.PHONY: target-models
target-models:
	for t in $(TARGET_MODELS); do \
	  MLCC_LEARN_TARGET=$$t $(PYTHON) -m mlcc.learn.candidates for-target && \
	  MLCC_LEARN_TARGET=$$t $(PYTHON) -m mlcc.learn.search label --split validation --jobs $(or $(JOBS),2) && \
	  MLCC_LEARN_TARGET=$$t $(PYTHON) -m mlcc.learn.search label --split train --jobs $(or $(JOBS),2) && \
	  MLCC_LEARN_TARGET=$$t $(PYTHON) -m mlcc.learn.train model --seeds 3 || exit 1; \
	done
	$(PYTHON) -m mlcc.learn.report targets

# Code generation variants (docs/TARGETS.md, "Code generation variants"): each target's
# code generation sweep on every training unit and on the validation units, the greedy
# choice on training, then targets.toml. Resumable: the sweep measures only what is
# missing. About 25 minutes per target on 2 CPUs.
VARIANT_TARGETS ?= thumbv7m thumbv6m riscv32
.PHONY: codegen-variants
codegen-variants:
	for t in $(VARIANT_TARGETS); do \
	  MLCC_LEARN_TARGET=$$t $(PYTHON) -m mlcc.learn.candidates codegen-sweep --sample label --count 0 --jobs $(or $(JOBS),2) && \
	  MLCC_LEARN_TARGET=$$t $(PYTHON) -m mlcc.learn.candidates codegen-sweep --sample validation --jobs $(or $(JOBS),2) && \
	  MLCC_LEARN_TARGET=$$t $(PYTHON) -m mlcc.learn.candidates codegen-variants || exit 1; \
	done
	$(PYTHON) -m mlcc.learn.candidates ship-targets
	$(PYTHON) -m mlcc.learn.report targets

# How close -fmlcc-search=N gets to a long search (N = 8..200) on validation units:
# models/data/search-budget-Oz.json, shown by `make report`. Resumable per unit.
.PHONY: budget
budget:
	$(PYTHON) -m mlcc.learn.search budget

# LLVM code generation options on top of the tuned default
# (mlcc/learn/candidates/codegen_sweep.py), on the walked units and 200 training
# units: how the `codegen` knobs of mlcc/data/clang-knobs.toml were found.
# Resumable; models/data/codegen-sweep-Oz-*.json.
.PHONY: codegen-sweep
codegen-sweep:
	$(PYTHON) -m mlcc.learn.candidates codegen-sweep --sample walk --count 120
	$(PYTHON) -m mlcc.learn.candidates codegen-sweep --sample label --count 200

# Differential testing with Csmith: N programs (seeds 1..N, default 1000) built
# with clang-19 -O0 and with mlcc (model's choice, trials, every candidate
# pipeline forced; at -Oz and -Os), outputs compared. Resumable; results in
# build/difftest/ (summary.json, mismatch-<seed>-<config>/repro.sh). TARGET=aarch64
# (or thumbv7m, thumbv6m) builds for that target and runs under qemu-user
# (summary-<target>.json).
.PHONY: difftest
difftest:
	$(PYTHON) -m mlcc.learn.check difftest -n $(or $(N),1000) --jobs $(or $(JOBS),2) --target $(or $(TARGET),x86_64)

# Code size and build time against clang-19 on real projects that are not in the
# model's corpus (mlcc/learn/data/bench-projects.toml), then the driver alone:
# writes docs/bench-results.json (resumable), docs/BENCHMARKS.md, docs/img/bench-*.png and
# the README's headline figures.
# `make bench PROFILE=quick` builds three small projects at -Oz, single-shot and
# rebuilt with a warm decision cache (minutes); the full profile, every project at
# -Oz and -Os, single-shot, with trials and rebuilt warm, takes hours on two cores.
.PHONY: bench
bench:
	mlcc-tool bench --profile $(or $(PROFILE),full)
	mlcc-tool bench --profile $(or $(PROFILE),full) --driver-speed

# The same projects for other targets at -Oz, clang-19 and mlcc side by side: every
# project's units compiled again for thumbv7m, thumbv6m and riscv32, the CMake projects
# built and linked for aarch64. Writes docs/bench-cross-results.json (resumable) and the
# "Other targets" section of docs/BENCHMARKS.md; about 25 minutes on 2 CPUs.
.PHONY: bench-cross
bench-cross:
	mlcc-tool bench --profile cross

# Instructions executed (valgrind's callgrind) by programs of the benchmark projects,
# clang's builds against mlcc's, from the builds `make bench` leaves:
# docs/RUN-TIME.md (mlcc/learn/data/run-time-workloads.toml).
.PHONY: run-time
run-time:
	$(PYTHON) -m mlcc.learn.evaluate run-time
