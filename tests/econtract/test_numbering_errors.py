"""A number statement that fails in the driver fails as every other query does."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from econtract import db
from econtract.issuance._numbering import take_number
from econtract.services import Services


def test_a_failed_number_statement_is_a_database_error_and_its_connection_is_not_lent_again(
    initialised: Services,
) -> None:
    # A stopped database raises the driver's own error in the statement; the service answers
    # SQLAlchemy's OperationalError with 503, anything else of the driver's would be a 500.
    engine = db.make_engine(initialised.settings.effective_database_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE issuance_claims RENAME TO claims_away"))
        with pytest.raises(DBAPIError):
            take_number(engine, claim_id="crt_none", stem="YZ3301002026")
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE claims_away RENAME TO issuance_claims"))
        # On PostgreSQL the failed statement left its connection inside an aborted
        # transaction: lent again, every later number would fail.
        for _ in range(21):  # more than the pool holds (db.make_engine: 10 and 10 more)
            assert take_number(engine, claim_id="crt_none", stem="YZ3301002026") is None
    finally:
        engine.dispose()
