"""The OpenRouter video API simulator (local mode, the demo and the tests)."""

from videogen_local.sim.server import OpenRouterSimulator, RecordedRequest, SimJob, SimulatorConfig

__all__ = ["OpenRouterSimulator", "RecordedRequest", "SimJob", "SimulatorConfig"]
