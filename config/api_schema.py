"""drf-spectacular's settings for the OpenAPI schema at /api/schema/ (imported by settings)."""

SPECTACULAR_SETTINGS = {
    "TITLE": "RLHF Platform API",
    "DESCRIPTION": "Arena battles, annotation, dataset exports and training runs.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Two different "format" choice sets: a dataset's export format and an import file's type.
    "ENUM_NAME_OVERRIDES": {
        "DatasetFormatEnum": "annotation.models.SnapshotFormat",
        "ImportFileFormatEnum": ["", "jsonl", "csv", "parquet"],
        # Two different "kind" choice sets: a training run's and a judge job's.
        "TrainingRunKindEnum": "training.models.RunKind",
        "JudgeJobKindEnum": "training.models.JudgeJobKind",
        # Every background job's status (core.jobs), and where an evaluation suite's prompts
        # came from (beside a dataset snapshot's source).
        "JobStatusEnum": "core.jobs.JobStatus",
        "SuiteSourceEnum": "evaluation.models.SuiteSource",
        "SnapshotSourceEnum": "annotation.models.SnapshotSource",
    },
}
