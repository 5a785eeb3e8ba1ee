"""A content digest inside every exported model, so a modified file is caught wherever it is used.

``metadata_props["edgetune_sha256"]`` holds the sha256 of the model's protobuf serialized
deterministically **without that one entry**: it covers the graph, every weight and the
``edgetune`` metadata (vocabulary, features, caches). :func:`stamp` writes it (the exporter's
``save_atomic`` calls it), :func:`verify_model` recomputes it; ``transcribe`` and ``bench``
verify before running (``--no-verify`` skips). Needs the ``onnx`` package (host side only; the
standalone device runner does not check).
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from edgetune.errors import ArtifactError

DIGEST_KEY = "edgetune_sha256"


def content_digest(model: Any) -> str:
    """sha256 of ``model`` (an onnx.ModelProto) with the digest entry left out."""
    import onnx

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    keep = [(p.key, p.value) for p in copy.metadata_props if p.key != DIGEST_KEY]
    del copy.metadata_props[:]
    for key, value in keep:
        entry = copy.metadata_props.add()
        entry.key, entry.value = key, value
    return hashlib.sha256(copy.SerializeToString(deterministic=True)).hexdigest()


def stamp(model: Any) -> str:
    """Write (or replace) the digest entry of ``model`` in place; return the digest."""
    digest = content_digest(model)
    keep = [(p.key, p.value) for p in model.metadata_props if p.key != DIGEST_KEY]
    del model.metadata_props[:]
    for key, value in [*keep, (DIGEST_KEY, digest)]:
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    return digest


def verify_model(path: str | os.PathLike, model: Any | None = None) -> str | None:
    """Check the file's digest; return it, None for a model without one (exported before digests),
    or raise ArtifactError naming the file, both digests and the fix."""
    import onnx

    if model is None:
        try:
            model = onnx.load(os.fspath(path), load_external_data=False)
        except Exception as exc:  # DecodeError for a file whose protobuf framing was damaged
            raise ArtifactError(f"{os.fspath(path)!r} is not a readable ONNX file ({type(exc).__name__}: {exc}); "
                                "it is damaged or not a model. Fix: copy or export it again") from None
    stored = next((p.value for p in model.metadata_props if p.key == DIGEST_KEY), None)
    if stored is None:
        return None
    actual = content_digest(model)
    if actual != stored:
        raise ArtifactError(
            f"{os.fspath(path)!r} was modified after export: its content digest is {actual[:16]}..., the "
            f"{DIGEST_KEY} it carries is {stored[:16]}... (changed weights, graph or metadata). Fix: copy or "
            f"export it again (`edgetune export` checks the study's sha256); --no-verify runs it anyway")
    return stored


__all__ = ["DIGEST_KEY", "content_digest", "stamp", "verify_model"]
