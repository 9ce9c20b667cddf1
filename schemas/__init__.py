"""Wire contracts: pydantic models of configurations, inference responses and stream events (no I/O)."""
