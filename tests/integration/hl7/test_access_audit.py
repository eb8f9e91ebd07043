"""PIX and PDQ queries over a live listener land in the access audit trail, with their sender."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from mllp_listener import MLLPConnection, er7, start_listener, write_config

from mpi.domain.access import AccessAction, AccessChannel
from mpi.service.views import AccessTrail
from mpi.storage.engine import create_sql_engine
from mpi.storage.store import SqlStore

pytestmark = pytest.mark.slow

FEED = """
MSH|^~\\&|HIS|CHL|MPI|ESANTE|20240101||ADT^A04^ADT_A01|F-1|P|2.5
PID|||A-1^^^CHL||Kremer^Luc||19700101|M
"""
PIX = """
MSH|^~\\&|PORTAL|X|MPI|ESANTE|20240101||QBP^Q23^QBP_Q21|Q-1|P|2.5
QPD|IHE PIX Query|T1|A-1^^^CHL
RCP|I
"""
PIX_UNKNOWN = """
MSH|^~\\&|PORTAL|X|MPI|ESANTE|20240101||QBP^Q23^QBP_Q21|Q-2|P|2.5
QPD|IHE PIX Query|T2|NOBODY^^^CHL
RCP|I
"""
PDQ = """
MSH|^~\\&|PORTAL|X|MPI|ESANTE|20240101||QBP^Q22^QBP_Q21|Q-3|P|2.5
QPD|IHE PDQ Query|T3|@PID.5.1.1^KREMER~@PID.7^19700101
RCP|I
"""


def read_trail(url: str) -> list:  # type: ignore[type-arg]
    store = SqlStore(create_sql_engine(url))
    try:
        return AccessTrail(store).read(limit=10)
    finally:
        store.close()


def test_queries_are_audited_while_serving_and_none_is_lost_at_a_graceful_stop(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'mpi.db'}"
    listener = start_listener(write_config(tmp_path), url)
    try:
        connection = MLLPConnection(listener.port)
        assert b"MSA|AA|F-1" in connection.ask(er7(FEED))
        assert b"QAK|T1|OK" in connection.ask(er7(PIX))
        deadline = time.monotonic() + 20
        while not read_trail(url):  # written in the background while the listener serves
            assert time.monotonic() < deadline, "the PIX query never reached the access audit trail"
            time.sleep(0.1)
        assert b"QAK|T2|AE" in connection.ask(er7(PIX_UNKNOWN))
        assert b"QAK|T3|OK" in connection.ask(er7(PDQ))
        connection.close()
    finally:
        assert listener.stop(signal.SIGTERM) == 0

    pdq, unknown, pix = read_trail(url)  # the last two were written at the stop
    assert all(a.actor == "PORTAL|X" and a.channel is AccessChannel.HL7 for a in (pdq, unknown, pix))
    assert pix.action is AccessAction.CROSS_REFERENCES_QUERIED and len(pix.subjects) == 1
    assert pix.criteria == "QPD|IHE PIX Query|T1|A-1^^^CHL"
    assert unknown.subjects == () and unknown.results == 0 and "NOBODY" in (unknown.criteria or "")
    assert pdq.action is AccessAction.DEMOGRAPHICS_QUERIED and pdq.subjects == pix.subjects
    assert pdq.results == 1
