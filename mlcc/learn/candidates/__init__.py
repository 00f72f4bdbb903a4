"""Candidates: the few pipelines the model chooses among, from the measurement table.

candidates (a greedy cover of each unit's best, K from a held-out curve) with
tune_default (the default every unit gets unless the model predicts better,
tuned one knob at a time); codegen_sweep (the code generation options the
`codegen` knobs came from) and slow_bound (what bounding slow passes gains and
costs) are the studies behind them. Commands: `python -m mlcc.learn.candidates`.
"""
