"""A store that runs itself: synthetic checkout scenes (and, later, a simulated camera and POS) for tests and the demo.
Never imports storage or handlers."""
