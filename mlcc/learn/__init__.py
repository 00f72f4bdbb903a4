"""The learning side of mlcc: corpus, search, training and export (never imported by the compile path)."""
