"""What the plant, the controller and the media workers agree on (kept free of imports: every worker loads it)."""

RTP_PORTS = 8  # media ports per worker: RTP and RTCP for each of its four calls

SELF_TEST_HEADER = "X-PatientLine-Self-Test"  # the line's own test calls carry a secret token in it
