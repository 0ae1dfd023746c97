"""eContract: the domain of the electronic certificate and seal service.

Configuration, the registry (models and migrations), issuance and status changes, the
audit trail and the command line live here; PDF sealing is in ``signing``, checking in
``verify`` and key custody in ``keys``.
"""

__version__ = "0.1.0"
