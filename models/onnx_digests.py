"""The ONNX export's checksums: recorded by the index when the export is made, compared by `check`.

`file_digests` is what the writer records (`IndexStore.record_export`); `export_problem` is what
`papersearch check` reports, and what `backup` uses to decide whether a copied export is sound.
"""

from __future__ import annotations

from pathlib import Path

from models.errors import ModelLoadError
from models.hashing import file_sha256
from models.onnx_encoder import CONFIG_FILE, TOKENIZER_FILE, VARIANT_FILES, OnnxEmbedder, is_exported

# (device, inode, size, mtime) -> SHA-256: a hard-linked copy of an export is not hashed again.
_DIGESTS: dict[tuple[int, int, int, int], str] = {}


def export_files(folder: Path) -> list[str]:
    """The names of the export's files present in `folder` (model variants, tokenizer, config)."""
    return [name for name in (*VARIANT_FILES.values(), TOKENIZER_FILE, CONFIG_FILE) if (Path(folder) / name).is_file()]


def file_digests(folder: Path) -> dict[str, str]:
    """file name -> SHA-256 for each file of the export that is present (model files, tokenizer, config)."""
    out = {}
    for name in export_files(folder):
        try:
            stat = (Path(folder) / name).stat()
        except OSError:
            continue
        key = (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
        if key not in _DIGESTS:
            _DIGESTS[key] = file_sha256(Path(folder) / name)
        out[name] = _DIGESTS[key]
    return out


def export_problem(folder: Path, recorded: dict[str, str] | None) -> str | None:
    """What is wrong with the export in `folder`, or None when it is sound (or absent).

    `recorded` holds the checksums noted when it was made; without them (an export made before
    they were recorded), it is loaded with onnxruntime instead, which a cut or garbled file fails.
    """
    folder = Path(folder)
    if not folder.is_dir():
        # Never made (a model the exporter does not cover), or left out of a copy (it is 87 MB for
        # MiniLM and re-exportable): searches use sentence-transformers, `rebuild` makes it.
        return None
    if recorded:
        missing = [name for name in recorded if not (folder / name).is_file()]
        if missing:
            return f"the ONNX export in {folder} lacks {', '.join(missing)}"
        found = file_digests(folder)
        changed = [name for name, digest in recorded.items() if found.get(name) != digest]
        if changed:
            return f"{', '.join(changed)} in {folder} differ from the export made for this index (checksum differs)"
        return None
    if not is_exported(folder):
        return f"the ONNX export in {folder} is incomplete"
    try:
        OnnxEmbedder(folder, threads=1).load()
    except ModelLoadError as exc:
        return f"the ONNX export in {folder} cannot be loaded ({str(exc)[:160]})"
    return None
