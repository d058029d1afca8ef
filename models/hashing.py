"""SHA-256 over files, read in blocks: the one helper the store, the model fingerprint and checks share."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import BinaryIO

_BLOCK = 1 << 20


def update_from_file(digest, handle: BinaryIO) -> None:
    """Feed everything left in an open binary file into `digest` (a hashlib object), block by block."""
    for block in iter(lambda: handle.read(_BLOCK), b""):
        digest.update(block)


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        update_from_file(digest, handle)
    return digest.hexdigest()
