"""Deliberately broken PyTorch focal losses (and one careful one) for the gate's own tests.

Each broken function is the careful implementation with exactly one defect, so that the test
can demand that the gate rejects it *for that defect* (the right checks fail, the others pass).
"""
