"""Dataset snapshots: filters -> immutable, content-hashed files in the formats the ecosystem
reads (see docs/datasets.md).

`snapshot_create` stores a pending snapshot and queues its build after commit;
`snapshot_build` (the Celery task's one call) streams the rows out of the database in chunks into
JSONL and Parquet under `MEDIA_ROOT/datasets/<id>/`, then records the sha256 of the JSONL file
(the content hash), the row count and the dataset card, and marks the snapshot ready, or failed
with a readable error. A snapshot leaves `pending` once: it is never rebuilt or edited; a failed
one is built again as a new snapshot (`snapshot_retry`). The build is the snapshot's job
(`core.jobs`): beat's job sweep fails builds whose worker died and re-sends builds whose
message was lost.

`export_to_files` is the same streaming export without a snapshot row, for
`manage.py export_dataset` and `bench/export.py`.

Modules: `spec` (filters, request, stats, card), `rows` (row producers per source), `columns`
(standard preference pairs built as Arrow columns), `build` (the snapshot services).
"""

from annotation.datasets.build import (
    export_to_files,
    snapshot_build,
    snapshot_create,
    snapshot_download_name,
    snapshot_file,
    snapshot_folder,
    snapshot_list,
    snapshot_preview,
    snapshot_retry,
)
from annotation.datasets.rows import (
    CHUNK,
    arena_rows,
    demonstration_rows,
    ranking_rows,
    rankings_queryset,
)
from annotation.datasets.spec import (
    FORMATS_OF,
    IMPORTED,
    DatasetError,
    Filters,
    Spec,
    Stats,
    card_build,
    card_markdown,
)

__all__ = [
    "CHUNK",
    "FORMATS_OF",
    "IMPORTED",
    "DatasetError",
    "Filters",
    "Spec",
    "Stats",
    "arena_rows",
    "card_build",
    "card_markdown",
    "demonstration_rows",
    "export_to_files",
    "ranking_rows",
    "rankings_queryset",
    "snapshot_build",
    "snapshot_create",
    "snapshot_download_name",
    "snapshot_file",
    "snapshot_folder",
    "snapshot_list",
    "snapshot_preview",
    "snapshot_retry",
]
