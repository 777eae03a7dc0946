"""`python -m hwdaemon` runs the same CLI as the `hwdaemon` console script."""

from hwdaemon.cli import main

main()
