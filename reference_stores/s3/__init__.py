"""S3 reference stores (boto3; the ``s3`` extra).

- ``S3SessionStore``: a log-structured session store (docs/s3-protocol.md).
- ``S3ArtifactStore``: artifacts as objects, large ones uploaded in parts.

Importing this package never needs boto3; constructing a store without it raises
``dependency_not_available`` naming the ``s3`` extra (DEP-1).

Point the stores at a server with ``endpoint_url=...`` (or ``$ASM_S3_ENDPOINT_URL``) and a bucket
with ``bucket=...`` (or ``$ASM_S3_BUCKET``); ``create_bucket=true`` creates it if missing.
"""

from reference_stores.s3.artifact_store import S3ArtifactStore
from reference_stores.s3.session_store import S3SessionStore

__all__ = ["S3ArtifactStore", "S3SessionStore"]
