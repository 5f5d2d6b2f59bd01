"""The suite: the pytest plugin, its options, the runner and the isolation of the implementation it calls,
case families, grading, invariants, contracts, sweeps, tiers and the results record."""
