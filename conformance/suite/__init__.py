"""The suite: the pytest plugin, its options, the runner, case families, grading, invariants, contracts,
sweeps, tiers and the results record."""
