"""Before forking helper processes (synthetic rendering, batch preparation): make the fork safe."""

from __future__ import annotations

import cv2


def before_fork() -> None:
    """Drop OpenCV to one thread in this process.

    OpenCV's worker threads are not copied by fork: a child forked while this
    process has them waits forever on the first OpenCV call that would use them
    (seen: batch preparation forked after rendering synthetic lines). With one
    thread there is no pool to wait on; training spends its time in torch.
    """
    cv2.setNumThreads(1)
