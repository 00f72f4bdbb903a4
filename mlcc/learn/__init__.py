"""The learning side of mlcc (never imported by the compile path).

One subpackage per step of the data's journey, each a command line of its own
(`python -m mlcc.learn.<package> STEP`): corpus (real projects built in collect
mode) -> search (pipelines measured on the corpus: the measurement and features
tables) -> candidates (the few pipelines the model chooses among, and its
default) -> train (the ONNX model) -> report (docs/MODEL-REPORT*.md); beside
them, evaluate (mlcc against clang on other projects) and check (miscompiles).
measure.py measures one pipeline on one unit for all of them, engine.py runs many
measurements at once (forked processes here, or a Ray cluster), paths.py says
where their files are, and retrain.py runs search, candidates and train on
your own code (`mlcc-tool retrain`).
"""
