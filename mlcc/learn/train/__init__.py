"""Train: the size model, from the measurement and features tables, exported to ONNX.

train (the dataset, model families compared by cross-validation grouped by
project, the default and trial sets, the ONNX file and its metadata) ->
variants (how much the family, weighting and seed move the result).
Commands: `python -m mlcc.learn.train`.
"""
