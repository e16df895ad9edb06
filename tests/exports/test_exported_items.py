"""One allow-list of exported items (assessments.definitions.EXPORTED_TYPES, read through
Instrument.exported_items) for every format: an item of a type nobody has allowed reaches none."""

import dataclasses
import io
import zipfile

import pytest

from assessments import registry
from assessments.definitions import EXPORTED_TYPES, TYPES, Item
from assessments.models import FormEntry
from exports import dataset, odm, writers

SECRET = "Voice note: she told me about the Tuesday IMR group"


def test_every_format_knows_every_exported_type_and_free_text_is_not_one():
    assert "text" not in EXPORTED_TYPES and EXPORTED_TYPES.issubset(TYPES)
    assert set(dataset.COLUMN_KINDS) == EXPORTED_TYPES == set(odm.DATA_TYPES)


@pytest.fixture
def planted(filled_trial, monkeypatch):
    """GAF-F with an item of a new type ("audio"), as a future definition might add, and a value
    of it in every GAF-F entry."""
    trial, _ = filled_trial
    gaf = registry.get("gaf_f")
    (section, label, items), *rest = gaf.sections
    recording = Item(code="recording", label="Voice note", type="audio", section=section)
    monkeypatch.setitem(
        registry._instruments,
        "gaf_f",
        dataclasses.replace(
            gaf,
            sections=((section, label, (*items, recording)), *rest),
            _by_code={**gaf._by_code, "recording": recording},
        ),
    )
    entries = FormEntry.objects.filter(instrument="gaf_f")
    assert entries.exists()
    for entry in entries:
        entry.values["recording"] = SECRET
        entry.save(update_fields=["values"])
    assert recording in registry.get("gaf_f").items
    return trial


def test_an_item_of_a_type_not_allowed_reaches_no_format(planted, tmp_path):
    outputs = {}
    for shape in ("long", "wide"):
        data = dataset.Dataset(planted, shape)
        assert not [c for c in data.columns if "recording" in c.name or "Voice" in c.label]
        assert SECRET not in {cell for row in data.rows() for cell in row}
        out = io.BytesIO()
        writers.write_csv_bundle(data, out, stem="data")
        with zipfile.ZipFile(out) as bundle:
            outputs[f"{shape}.csv"] = b"".join(bundle.read(n) for n in bundle.namelist())
        writers.write_sav(data, tmp_path / f"{shape}.sav")
        writers.write_dta(data, tmp_path / f"{shape}.dta")
        outputs[f"{shape}.sav"] = (tmp_path / f"{shape}.sav").read_bytes()
        outputs[f"{shape}.dta"] = (tmp_path / f"{shape}.dta").read_bytes()
    out = io.BytesIO()
    odm.write_odm(planted, out)
    outputs["odm"] = out.getvalue()
    assert odm.validate_odm(io.BytesIO(outputs["odm"])) == []
    for fmt, body in outputs.items():
        assert b"recording" not in body and b"Voice" not in body, fmt
        assert SECRET.encode() not in body, fmt
        # The rest of the instrument is there: the test looks where the item would be.
        assert b"gaf_f_gaf_f" in body or b"I.gaf_f.gaf_f" in body, fmt
