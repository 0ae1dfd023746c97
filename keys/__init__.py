"""Key custody: the CA hierarchy, key stores, signer handles, the timestamp authority, CRLs, OCSP.

Nothing outside this package ever holds a private key. Callers get a
:class:`keys.handles.KeyHandle`, which signs bytes and exposes the public key only.
"""
