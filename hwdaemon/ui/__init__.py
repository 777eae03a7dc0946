"""The review page: a small Starlette app over the job store.

    app.py       create_app: the middleware and the routes, composed once
    routes.py    the review handlers (jobs list, job page, scan, save, approve, add a word)
    gate.py      the token gate, security headers and CSRF cookie; the sign-in form
    views.py     the Jinja2 templates and what every page is rendered with
    security.py  tokens, session-bound CSRF, bounded forms
    hosts.py     which Host headers are answered (DNS rebinding)
    server.py    uvicorn, on the daemon's thread or alone for `hwdaemon ui`

What a reviewer does to a job (save, approve, add a word) is `hwdaemon.review`,
with no HTTP in it, so other callers do the same.
"""
