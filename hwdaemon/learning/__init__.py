"""Continuous learning: a profile's model fine-tuned in the background on the lines people approve (docs/learning.md).

    places.py    where a profile's model is read from and its versions kept, from the config
    registry.py  the versions of a profile's model with their figures, install, rollback, attempts
    runs.py      one background training as a folder: planned, frozen lines, checkpoint, outcome
    learner.py   the daemon's thread: when to train, pausing the training while jobs are read
    trainer.py   the training process itself (nice 19, one thread): train, measure, install if better
    summary.py   what `status`, /metrics, `models` and the review page show of a profile's learning

The daemon side (learner, summary) imports no torch; only trainer.py, in its own process, does.
"""
