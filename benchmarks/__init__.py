"""The performance room: the throughput harness (`focalspec bench`), the memory-bandwidth roofline, and
(as files beside it) the dated numbers."""
