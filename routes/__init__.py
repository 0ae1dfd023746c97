"""The HTTP API's routers, one module per capability (``router`` in each).

Like ``api.py``, which assembles them, these modules speak HTTP only and call the domain
(``econtract``) for everything else; errors are raised as domain errors and mapped to
problem+json in ``api.py``.
"""
