"""The HTTP API under /api/v1, served with the review page: submit scans, follow jobs, fetch results — for programs.

    app.py         the Starlette app and its gate (token, scope, rate limit), mounted by ui/app.py
    endpoints.py   every endpoint once: path, handler, scope, models — the routes and OpenAPI both come from it
    documents.py   the handlers
    models.py      requests and answers as pydantic models (validation, and the OpenAPI schemas)
    views.py       store rows → answers
    submission.py  an upload's choices checked, then the daemon's own intake (daemon/intake.py)
    upload.py      the request body (multipart or raw) streamed into a spool file, bounded
    spool.py       the spool file: whole, fsynced and linked into state_dir/uploads, or nothing
    auth.py        Bearer tokens (constant-time), scopes, the per-token rate limit
    openapi.py     the OpenAPI 3.1 document, generated
    client.py      the client `hwdaemon submit` uses

docs/api.md is the user's guide, with curl examples.
"""
