"""The gate: `focalspec check` on one implementation, and the isolation that keeps a crashing callable
from taking the run down."""
