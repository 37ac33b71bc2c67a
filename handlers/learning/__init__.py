"""The learning loop: fraud reports, enrollment proposals and enrollment, look-back, expiry and erasure."""
