"""Timestamp clients for sealing: an external RFC 3161 authority over HTTP."""

from __future__ import annotations

from asn1crypto import tsp
from pyhanko.sign.timestamps.common_utils import TimestampRequestError
from pyhanko.sign.timestamps.requests_client import RequestsHTTPTimeStamper


class HTTPTimeStamper(RequestsHTTPTimeStamper):
    """An external TSA over HTTP whose every failure is a ``TimestampRequestError``.

    pyHanko's client lets a connection error or an undecodable answer escape as whatever
    the transport or the parser raised; the sealing engine needs one failure type to refuse
    the seal instead of making it at a weaker level.
    """

    def __init__(self, url: str, *, timeout: float) -> None:
        super().__init__(url, timeout=timeout)  # type: ignore[no-untyped-call]

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        """Ask the authority, and make sure the answer parses."""
        try:
            response = await super().async_request_tsa_response(req)
            # asn1crypto parses lazily: touch the parts pyHanko reads so garbage fails here.
            response["status"]["status"].native  # noqa: B018
            response["time_stamp_token"]["content"].native  # noqa: B018
        except TimestampRequestError:
            raise
        except Exception as exc:  # the transport and the parser raise many types
            raise TimestampRequestError(f"{self.url} gave no usable timestamp: {exc}") from exc
        return response
