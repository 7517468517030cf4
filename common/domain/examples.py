"""The OpenAPI examples a response model carries, to reuse inside another model's example.

Every response model declares its examples once, in `model_config["json_schema_extra"]`; a page
or a report nests them through these two functions instead of spelling the lookup again.
"""

from __future__ import annotations

from typing import Any, cast

from pydantic import BaseModel


def examples(model: type[BaseModel]) -> list[Any]:
    """Every example `model` declares."""
    extra = cast(dict[str, Any], model.model_config.get("json_schema_extra") or {})
    return list(extra["examples"])


def example(model: type[BaseModel]) -> Any:
    """The first example `model` declares."""
    return examples(model)[0]
