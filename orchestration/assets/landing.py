"""Landing: master-data CSV drops, their bronze snapshots and the silver dimensions.

The load is :func:`transforms.master_data.load_master_data`, the step ``scm refresh`` runs
first: pyarrow and delta-rs, no Spark. It writes the same typed snapshot to
``silver/<entity>`` and then ``bronze/<entity>``. An unchanged file is not reloaded (its
fingerprint is in the Delta commit), so materializing this every hour costs a few ``stat``
calls.
"""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg

from orchestration.refresh_lock import refresh_lock
from orchestration.resources import ScmSettings
from orchestration.table_metadata import OWNERS, arrow_table_schema, delta_table_metadata
from scm.contracts import MASTER_FILES, master_arrow_schema
from transforms.lake_io import delta_version

GROUP = "landing"


def landing_key(entity: str) -> dg.AssetKey:
    return dg.AssetKey(["landing", entity])


def master_key(entity: str) -> dg.AssetKey:
    return dg.AssetKey(["bronze", entity])


def dimension_key(entity: str) -> dg.AssetKey:
    return dg.AssetKey(["silver", entity])


landing_files = [
    dg.AssetSpec(
        landing_key(entity),
        description=f"`SCM_LAKE/landing/{master.file_name}`: a full snapshot of {entity}, "
        "dropped by the ERP (contracts.md, master data).",
        group_name=GROUP,
        kinds={"csv"},
        owners=OWNERS,
    )
    for entity, master in MASTER_FILES.items()
]


_master_specs = [
    dg.AssetSpec(
        master_key(entity),
        deps=[landing_key(entity)],
        description=f"`bronze/{entity}`: the latest valid `{master.file_name}` (key "
        f"`{master.key}`); a file that breaks the contract is rejected whole.",
        group_name=GROUP,
        kinds={"delta"},
        owners=OWNERS,
        metadata={"dagster/column_schema": arrow_table_schema(master_arrow_schema(entity))},
    )
    for entity, master in MASTER_FILES.items()
]
_dimension_specs = [
    dg.AssetSpec(
        dimension_key(entity),
        deps=[master_key(entity)],
        description=f"`silver/{entity}`: the {entity} dimension, the same typed snapshot as "
        f"`bronze/{entity}`.",
        group_name="silver",
        kinds={"delta"},
        owners=OWNERS,
        metadata={"dagster/column_schema": arrow_table_schema(master_arrow_schema(entity))},
    )
    for entity in MASTER_FILES
]


@dg.multi_asset(name="master_data", specs=[*_master_specs, *_dimension_specs])
def master_data(context, scm: ScmSettings) -> Iterator[dg.MaterializeResult]:
    """Load changed landing files; each table's Delta version is its data version."""
    from transforms.master_data import load_master_data

    lake = scm.lake()
    with refresh_lock(context, scm.load()):  # a CLI refresh loads the same files
        loads = load_master_data(lake)
    for load in loads:
        for key, path in (
            (master_key(load.entity), lake.bronze(load.entity)),
            (dimension_key(load.entity), lake.silver(load.entity)),
        ):
            metadata = {"outcome": load.outcome, "rows_loaded": load.rows}
            metadata.update(delta_table_metadata(path))
            version = delta_version(path)
            yield dg.MaterializeResult(
                asset_key=key,
                metadata=metadata,
                data_version=dg.DataVersion(str(version)) if version is not None else None,
            )
