"""Port arithmetic shared by the plant and the media workers (kept free of imports: every worker loads it)."""

RTP_PORTS = 8  # media ports per worker: RTP and RTCP for each of its four calls
