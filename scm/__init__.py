"""Core of the supply-chain lakehouse: settings, event contracts, lake catalog and CLI.

The core imports no layer (ingest, transforms, orchestration, dashboards); layers import it.
"""

from __future__ import annotations

from scm.errors import ScmError
from scm.lake import Lake
from scm.settings import Settings, load_settings

__all__ = ["Lake", "ScmError", "Settings", "load_settings"]
