"""GB/T 38540-2020 seal data (SESeal v4) and signatures (SES_Signature v4), and GM/T 0031-2014
(v1) for reading: made for every SM2 seal, checked by ``econtract ses verify``."""

from econtract.ses.make import SESSigner, make_ses_seal, make_ses_signature
from econtract.ses.read import SESReport, SESUnreadableError, check_ses

__all__ = [
    "SESReport",
    "SESSigner",
    "SESUnreadableError",
    "check_ses",
    "make_ses_seal",
    "make_ses_signature",
]
