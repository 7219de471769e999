"""Local source objects: a file's ledger identity (path + content hash)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from iotpipe.model import ObjectRef

HASH_CHUNK = 1024 * 1024


def local_object(path: Path) -> ObjectRef:
    """Identify a local file version by its absolute path and SHA-256 content hash.

    Parameters
    ----------
    path
        The file.

    Returns
    -------
    ObjectRef
        ``file://`` source, ``sha256:<hex>`` version and size. A changed file is a new version
        (it loads again, upserting); the same bytes again are the same version (skipped).
    """
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as stream:
        while chunk := stream.read(HASH_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return ObjectRef(path.resolve().as_uri(), f"sha256:{digest.hexdigest()}", size)
