"""The lake catalog: where every table lives (interfaces.md, "Lake layout").

Paths are strings so the same code serves a local folder and an object-store URI.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

Layer = Literal["bronze", "silver", "gold"]

EVENT_ENTITIES: tuple[str, ...] = ("orders", "shipments", "inventory", "returns", "procurement")
MASTER_ENTITIES: tuple[str, ...] = ("products", "locations", "suppliers", "customers")
BRONZE_ENTITIES: tuple[str, ...] = EVENT_ENTITIES + MASTER_ENTITIES + ("quarantine",)


def _is_uri(path: str) -> bool:
    return "://" in path


@dataclass(frozen=True)
class Lake:
    """A lake root and the names of the tables under it."""

    root: str

    @classmethod
    def at(cls, root: str) -> Lake:
        """A lake at ``root``; local folders are made absolute so Spark and DuckDB agree."""
        return cls(root if _is_uri(root) else os.path.abspath(root))

    def _join(self, *parts: str) -> str:
        return "/".join([self.root.rstrip("/"), *parts])

    @property
    def is_local(self) -> bool:
        return not _is_uri(self.root)

    @property
    def landing(self) -> str:
        return self._join("landing")

    @property
    def quarantine(self) -> str:
        return self._join("bronze", "quarantine")

    def bronze(self, entity: str) -> str:
        return self._join("bronze", entity)

    def silver(self, table: str) -> str:
        return self._join("silver", table)

    def gold(self, table: str) -> str:
        return self._join("gold", table)

    def table(self, layer: Layer, name: str) -> str:
        return self._join(layer, name)

    def checkpoint(self, query: str) -> str:
        return self._join("_checkpoints", query)

    def tables(self, layer: Layer) -> list[str]:
        """Names of the Delta tables that exist in ``layer``."""
        from scm import storage  # Arrow, only when a command reads the lake

        folder = self._join(layer)
        return sorted(
            name
            for name in storage.children(folder)
            if storage.is_dir(f"{folder}/{name}/_delta_log")
        )
