"""Diagnosis: which mechanism caused a failure (by reproduction), its severity and measured impact, and the
smallest input that shows it."""
