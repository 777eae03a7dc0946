"""The built-in pipeline pieces, registered exactly like third-party plugins.

Each module that registers pieces is a plugin of its own, named in
plugins.BUILTIN_PLUGINS and registered through the same hooks an installed plugin
implements: steps.py; detectors/ (rules, craft, linenet); recognizers/ (easyocr,
handwriting); postprocessors/ (tidy, spelling); sinks.py (the `file` sink). The other modules are their helpers
(easyocr_reader.py, wordlists.py, reading order, the handwriting model and its decoder).
"""
