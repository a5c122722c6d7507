"""The model-family registry: the spec's ``model`` key -> the family class.

A family registers itself when its module is imported::

    @register
    class MyFamily(ModelFamily):
        name = "my_family"
        spec_class = MySpec
        ...

The built-in families are imported here, so ``get_family("random_effects")`` works after
``import harmoni_bayes.models``.  A family defined elsewhere (a plug-in, a test) registers the same way;
nothing else in the package needs editing.
"""

from __future__ import annotations

from typing import TypeVar

from ..errors import SpecError
from .base import ModelFamily

_REGISTRY: dict[str, type[ModelFamily]] = {}

F = TypeVar("F", bound=type[ModelFamily])


def register(cls: F) -> F:
    """Register a model family class under its ``name`` (usable as a class decorator).

    Raises
    ------
    TypeError
        When the class lacks ``name`` or ``spec_class``, or its spec class does not declare ``model``.
    ValueError
        When another class is already registered under the same name.
    """
    name = getattr(cls, "name", None)
    spec_class = getattr(cls, "spec_class", None)
    if not isinstance(name, str) or spec_class is None:
        raise TypeError(f"{cls.__name__} needs class attributes 'name' and 'spec_class' to be registered")
    if "model" not in spec_class.model_fields:
        raise TypeError(f"{spec_class.__name__} must declare model: Literal[{name!r}]")
    if name in _REGISTRY and _REGISTRY[name] is not cls:
        raise ValueError(f"a model family named {name!r} is already registered ({_REGISTRY[name].__name__})")
    _REGISTRY[name] = cls
    return cls


def unregister(name: str) -> None:
    """Remove a family (for tests that register a temporary one)."""
    _REGISTRY.pop(name, None)


def get_family(name: str) -> type[ModelFamily]:
    """The family registered under ``name``; a :class:`SpecError` naming the known families otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise SpecError(f"unknown model {name!r}; known models: {', '.join(families())}") from None


def families() -> list[str]:
    """Names of the registered families, sorted."""
    return sorted(_REGISTRY)


# The built-in families register themselves on import.
from . import nma, pos, random_effects, subgroups, surrogacy, surrogacy_classes  # noqa: E402, F401

__all__ = ["ModelFamily", "families", "get_family", "register", "unregister"]
