"""Every table of the registry in one metadata: importing this module imports the packages
that map their tables on :class:`econtract.models.Base` beside the flat ones in
``econtract.models`` (the migrations' environment and the schema's tests read it)."""

from __future__ import annotations

import econtract.blobs
import econtract.console
import econtract.envelopes
import econtract.issuance._claims
import econtract.ses._models
import econtract.supervision
import econtract.translog  # noqa: F401
from econtract.models import Base

#: The registry's whole schema as the code maps it.
METADATA = Base.metadata
