"""Local mode: the deployed pipeline (same handlers, same state machine) on moto, on one machine."""
