"""Plain words for the contract's names: a family's own names first, then the shared wording."""

from __future__ import annotations

import re
from collections.abc import Mapping

_INDEXED = re.compile(r"(\w+)\[(.+)\]")
_PROB = re.compile(r"^P\((?P<q>.+?)(?P<op><=|>=|<|>)(?P<t>-?[\d.]+(?:e-?\d+)?)\)$")


def describe_quantity(name: str, names: Mapping[str, str] | None = None) -> str:
    """A summary.json quantity name in plain words (``names``: the family's own wording)."""
    if names and name in names:
        return names[name]
    m = _INDEXED.fullmatch(name)
    if m:
        stem, label = m.groups()
        if stem == "hr":
            return f"HR in {label} (posterior, after borrowing strength)"
        if stem == "hr_raw":
            return f"HR in {label} as published"
        if stem == "hr_ratio" and "/" in label:
            a, b = label.split("/", 1)
            return f"ratio of HRs, {a} / {b} (1 = same benefit)"
        if stem == "exchangeable":
            return f"{label} is exchangeable with the other levels"
    return name


def describe_probability(name: str, names: Mapping[str, str] | None = None) -> str:
    """``P(hr_pooled<1)`` -> ``pooled HR (average across trials) below 1``."""
    if names and name in names:
        return names[name]
    m = re.fullmatch(r"P\((.+)\)", name)
    if m and m.group(1).startswith("exchangeable["):
        return describe_quantity(m.group(1), names)
    m = _PROB.match(name)
    if not m:
        return name
    word = {"<": "below", "<=": "at most", ">": "above", ">=": "at least"}[m["op"]]
    return f"{describe_quantity(m['q'], names)} {word} {m['t']}"
