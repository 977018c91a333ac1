"""A simulated supply chain behind ``scm simulate`` (docs/simulator.md).

``generate_history`` is pure (same options, same bytes) and needs no Kafka; ``simulate``
writes the master data and produces the messages, optionally continuing live.
"""

from __future__ import annotations

from simulator.command import simulate
from simulator.events import Record
from simulator.history import generate_history
from simulator.options import SimulationOptions
from simulator.output import read_json_lines, write_json_lines
from simulator.world import World, build_world

__all__ = [
    "Record",
    "SimulationOptions",
    "World",
    "build_world",
    "generate_history",
    "read_json_lines",
    "simulate",
    "write_json_lines",
]
