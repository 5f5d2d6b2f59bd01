"""The gate: `focalspec check` on one implementation, one verdict (the suite's isolation, which keeps a
crashing callable from taking the run down, is ``suite.isolation``)."""
