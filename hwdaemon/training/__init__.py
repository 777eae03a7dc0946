"""`hwdaemon train`: turn labelled handwriting lines into a recognizer (issue #9).

data.py reads line samples (manifest, ALTO, PAGE XML) and crops them;
exclusion.py keeps the evaluation documents out of every training set.
"""
