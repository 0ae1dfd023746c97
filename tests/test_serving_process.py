"""What the service's lifespan sets in its process for the event loop's sake, and undoes."""

from __future__ import annotations

import gc
import sys

import pytest
from fastapi.testclient import TestClient

from econtract.services import Services


def test_a_serving_process_switches_threads_often_and_keeps_start_up_objects_frozen(
    initialised: Services,
) -> None:
    from api import create_app  # noqa: PLC0415

    before = sys.getswitchinterval()
    assert before > 0.001
    with TestClient(create_app(initialised.settings)) as client:
        assert client.get("/healthz").status_code == 200
        # A thread waiting for the interpreter lock (the event loop) gets it within 1 ms.
        assert sys.getswitchinterval() == pytest.approx(0.001)
        assert gc.get_freeze_count() > 0
    assert sys.getswitchinterval() == pytest.approx(before)
    assert gc.get_freeze_count() == 0
