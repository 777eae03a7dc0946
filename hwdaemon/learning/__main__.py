"""`python -m hwdaemon.learning RUN_FOLDER PARENT_PID`: the training process the daemon's learner starts (trainer.py)."""

import sys

from hwdaemon.learning.trainer import main

sys.exit(main(sys.argv[1:]))
