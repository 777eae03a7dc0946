"""Built-in detectors: `lines` and `mser` (rules.py), `craft` (craft.py), `linenet` (linenet.py); reading order and ink measures they share."""
