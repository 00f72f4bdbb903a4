"""Check: that mlcc's builds are right, not only small.

difftest (Csmith programs built by mlcc in many configurations, their output
against clang -O0's) and triage (candidates that make a unit far smaller than
clang does, checked for what they removed). Commands: `python -m mlcc.learn.check`.
"""
