"""Report: how the bundled model does on projects it never saw (`docs/MODEL-REPORT*.md`).

Computed from the committed tables and the model file alone, so `make report`
reproduces it. Commands: `python -m mlcc.learn.report`.
"""
