"""Search: measure pass pipelines on the corpus, into the tables every later step reads.

search (explore, walk, knobs, crosscheck, label; the measurement and features
tables) -> mine (long searches of `-fmlcc-search`, guided by the bundled model);
budget (how close short searches come to long ones), data_share (how much of
clang's object is initialized data), pipeline_time (what pipelines cost in
compile time). Commands: `python -m mlcc.learn.search`.
"""
