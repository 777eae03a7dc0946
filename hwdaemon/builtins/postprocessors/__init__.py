"""Built-in post-processors: `normalize_whitespace` and `min_confidence` (tidy.py), `spelling` (spelling.py)."""
