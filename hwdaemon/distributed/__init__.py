"""Reading on other hosts: the daemon sends jobs through Celery (Redis broker) to `hwdaemon worker` processes.

The daemon host keeps the watcher, the store and delivery (coordinator.py);
worker hosts only read (worker.py). messages.py is what travels between them.
"""
