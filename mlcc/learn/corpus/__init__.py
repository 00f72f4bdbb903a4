"""The training corpus: real projects built by mlcc in collect mode, and their manifest.

projects (the list, at -Oz) -> sources (fetch, extract) -> collect (configure and
`make` with mlcc in collect mode: every unit's bitcode and compile description) ->
manifest (`models/corpus-manifest.json`); level derives the -Os corpus from the
-Oz one. `layout` says where it all lives. Commands: `python -m mlcc.learn.corpus`.
"""
