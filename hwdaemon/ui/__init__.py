"""The review page: a small Starlette app over the job store (see app.py)."""
