"""Model families (registry + streaming CTC models).

Importing this package is light (no torch): the registry and config dataclasses are pure
Python; a family's torch module is imported when :func:`build_model` builds one.
"""

from edgetune.model._registry import ModelFamily, build_model, families, get_family, register_family
from edgetune.model.configs import ConformerLiteConfig, round_width

register_family("conformer_lite", ConformerLiteConfig, "edgetune.model.conformer_lite:build_conformer_lite")

__all__ = [
    "ConformerLiteConfig",
    "ModelFamily",
    "build_model",
    "families",
    "get_family",
    "register_family",
    "round_width",
]
