"""Analysis specs: every shipped spec parses; bad keys and values are refused with clear messages."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from harmoni_bayes.cli import app
from harmoni_bayes.errors import SpecError
from harmoni_bayes.specs import load_spec, parse_spec

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted((ROOT / "models").glob("*.toml"))


def test_required_specs_are_shipped():
    names = {p.stem for p in SHIPPED}
    assert {"harmoni2_pfs_pdl1", "harmoni2_pfs_histology", "ivonescimab_pfs_meta"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_specs_parse(path):
    spec = load_spec(path)
    assert spec.name == path.stem
    assert spec.title


def _base(**kw):
    d = {
        "model": "subgroups",
        "name": "x",
        "title": "t",
        "evidence": {"trials": ["HARMONi-2"], "subgroup_factor": "pdl1"},
    }
    d.update(kw)
    return d


def test_all_problems_listed_at_once():
    bad = _base(
        evidnce={},
        priors={"tau": {"dist": "half_normal", "sigma": -1}},
        sampler={"draws": "many", "backend": "stan"},
    )
    with pytest.raises(SpecError) as e:
        parse_spec(bad)
    msg = e.value.message()
    assert "evidnce: unknown key" in msg
    assert "sigma" in msg and "greater than 0" in msg
    assert "sampler.draws" in msg
    assert "sampler.backend" in msg
    assert len(e.value.problems) == 4


def test_unknown_model_and_missing_model():
    with pytest.raises(SpecError, match="model"):
        parse_spec({"name": "x", "title": "t"})
    with pytest.raises(SpecError):
        parse_spec(_base(model="magic"))


def test_unknown_prior_distribution():
    with pytest.raises(SpecError, match="tau"):
        parse_spec(_base(priors={"tau": {"dist": "uniform", "lower": 0, "upper": 1}}))


def test_bad_toml_and_missing_file(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text("model = [unclosed")
    with pytest.raises(SpecError, match="not valid TOML"):
        load_spec(p)
    with pytest.raises(SpecError, match="not found"):
        load_spec(tmp_path / "nope.toml")


def test_cli_refuses_bad_spec_without_traceback(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text('model = "subgroups"\ntitle = "t"\ncolour = "blue"\n[evidence]\ntrials = ["HARMONi-2"]\n')
    res = CliRunner().invoke(app, ["run", str(p), "--out", str(tmp_path / "out")])
    assert res.exit_code == 2
    assert "colour: unknown key" in res.output
    assert "Traceback" not in res.output
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------------
# Issue 14: the exact engine is the default where a family has one
# ---------------------------------------------------------------------------------------------


def test_a_spec_without_method_gets_its_family_default():
    assert parse_spec(_base()).method == "exact"  # subgroups: the plain NNHM has an exact engine
    assert parse_spec(_base(exnex={"enabled": True})).method == "mcmc"  # EXNEX has none
    re = {"model": "random_effects", "name": "x", "title": "t", "evidence": {"trials": ["HARMONi-2"]}}
    assert parse_spec(re).method == "exact"
    surrogacy = load_spec(ROOT / "models" / "nsclc_surrogacy.toml").model_dump()
    del surrogacy["method"]
    assert parse_spec(surrogacy).method == "exact"  # the one-line surrogacy model's grid engine
    classes = load_spec(ROOT / "models" / "nsclc_surrogacy_classes.toml").model_dump()
    classes.pop("method", None)
    assert parse_spec(classes).method == "mcmc"  # no exact engine


def test_an_explicit_method_is_kept_and_overrides_resolve_too():
    from harmoni_bayes.specs import with_overrides

    spec = parse_spec(_base(method="mcmc"))
    assert spec.method == "mcmc"
    assert with_overrides(spec, method="exact").method == "exact"
    # a spec built directly (method None) is resolved by with_overrides, the step run_spec always takes
    from harmoni_bayes.models.subgroups import SubgroupSpec

    direct = SubgroupSpec.model_validate(_base())
    assert direct.method is None
    assert with_overrides(direct).method == "exact"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_specs_of_exact_families_run_exact(path):
    from harmoni_bayes.models import get_family

    spec = load_spec(path)
    if "exact" in get_family(spec.model).capabilities:
        assert spec.method == "exact"
