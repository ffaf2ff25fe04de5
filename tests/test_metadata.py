"""Units and long names of forcing fields and outputs (process/metadata.py)."""

from __future__ import annotations

import inspect
import re

import pytest

from differland_bayes.process import MODELS
from differland_bayes.process.metadata import (
    FORCING_INFO,
    OUTPUT_INFO,
    forcing_info,
    output_info,
)

#: fields whose ``#:`` comment states no unit
NO_UNIT_IN_COMMENT = {"end_of_year"}
#: comment spellings of units that metadata writes in CF style
CF_SPELLING = {"degrees north": "degrees_north"}

FIELD_COMMENT = re.compile(r"^\s+(\w+): Array\s+#:\s*(.+)$", re.MULTILINE)


def _comment_units(cls: type) -> dict[str, str]:
    """Units stated by the ``#:`` comments of a NamedTuple: the last ', '-separated part."""
    out = {}
    for field, comment in FIELD_COMMENT.findall(inspect.getsource(cls)):
        if field in NO_UNIT_IN_COMMENT:
            continue
        unit = comment.rsplit(", ", 1)[-1]
        unit = re.sub(r"\s*\(.*\)$", "", unit).strip()
        out[field] = CF_SPELLING.get(unit, unit)
    return out


@pytest.mark.parametrize("name", sorted(MODELS))
def test_output_keys_are_the_namedtuple_fields_in_order(name):
    assert list(OUTPUT_INFO[name]) == list(MODELS[name].Outputs._fields)
    assert list(output_info(name)) == list(MODELS[name].Outputs._fields)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_forcing_keys_are_the_namedtuple_fields_in_order(name):
    assert list(FORCING_INFO[name]) == list(MODELS[name].Forcing._fields)
    assert list(forcing_info(name)) == list(MODELS[name].Forcing._fields)


def test_output_counts():
    assert len(OUTPUT_INFO["dalec993"]) == 44
    assert len(OUTPUT_INFO["dalec990"]) == 32


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("kind", ["Outputs", "Forcing"])
def test_units_agree_with_the_structure_comments(name, kind):
    cls = getattr(MODELS[name], kind)
    table = OUTPUT_INFO[name] if kind == "Outputs" else FORCING_INFO[name]
    stated = _comment_units(cls)
    # every field but the documented exceptions has a parsable comment
    assert set(stated) == set(cls._fields) - NO_UNIT_IN_COMMENT
    wrong = {f: (table[f][0], u) for f, u in stated.items() if table[f][0] != u}
    assert not wrong, f"(metadata, comment) units differ: {wrong}"


@pytest.mark.parametrize("name", sorted(MODELS))
def test_entries_are_non_empty_strings(name):
    for info in (OUTPUT_INFO[name], FORCING_INFO[name]):
        for field, (units, long_name) in info.items():
            assert isinstance(units, str) and units, field
            assert isinstance(long_name, str) and long_name, field


def test_accepts_instances_and_returns_copies():
    model = MODELS["dalec993"]()
    info = output_info(model)
    assert info == OUTPUT_INFO["dalec993"]
    info["gpp"] = ("kg", "changed")
    assert OUTPUT_INFO["dalec993"]["gpp"] == ("gC m-2 d-1", "gross primary production")


def test_unknown_model_is_a_key_error_naming_it():
    with pytest.raises(KeyError, match="dalec000"):
        output_info("dalec000")
