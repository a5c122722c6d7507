"""The sensitivity strip beside every exact headline: each row is the fit under that prior setting."""

from __future__ import annotations

import pytest

from harmoni_bayes.models import get_family
from harmoni_bayes.run import run_spec
from harmoni_bayes.specs import load_spec, merge_changes, parse_spec, spec_to_dict
from helpers import REPO

SPEC = REPO / "models" / "ivonescimab_pfs_meta_now.toml"


def test_each_strip_row_equals_a_fit_under_its_prior_setting():
    spec = load_spec(SPEC)
    result = run_spec(spec, method="exact")
    strip = result.summary.extra["strip"]
    family = get_family(spec.model)
    assert [r["label"] for r in strip["rows"]] == ["as specified", *(label for label, _ in family.sensitivity)]
    head = [r for r in strip["rows"] if r["headline"]]
    assert len(head) == 1 and head[0]["probability"] == result.summary.probability("P(hr_pooled<1)")["value"]
    label, changes = family.sensitivity[0]
    alt = run_spec(parse_spec(merge_changes(spec_to_dict(spec), changes)), method="exact")
    row = next(r for r in strip["rows"] if r["label"] == label)
    assert row["probability"] == pytest.approx(alt.summary.probability("P(hr_pooled<1)")["value"], abs=1e-6)
    assert row["median"] == pytest.approx(alt.summary.quantity("hr_pooled")["median"])
    # the tau prior matters for a 4-trial meta-analysis: the rows are not all the same
    assert len({r["upper"] for r in strip["rows"]}) > 1


def test_merge_changes_replaces_a_prior_whole_and_leaves_its_inputs_alone():
    base = {"priors": {"tau": {"dist": "half_normal", "sigma": 0.5}, "mu": {"dist": "normal", "sigma": 2}}}
    changes = {"priors": {"tau": {"dist": "half_cauchy", "scale": 0.5}}}
    merged = merge_changes(base, changes)
    assert merged["priors"]["tau"] == {"dist": "half_cauchy", "scale": 0.5}
    assert merged["priors"]["mu"] == {"dist": "normal", "sigma": 2}
    assert base["priors"]["tau"] == {"dist": "half_normal", "sigma": 0.5}
