"""SPSS and Stata files take each column's type, width and format from the codebook (Column),
whatever the rows hold: a statistician's syntax written on an interim export still runs on the
next one. Checked with pyreadstat and with GNU PSPP, a reader no one here wrote."""

import csv
import io
import os
import shutil
import subprocess

import pyreadstat
import pytest

from exports import writers
from exports.columns import Column
from exports.dataset import Dataset
from exports.released import KeyDataset, ProcessDataset

PSPP = shutil.which("pspp")


def spss_format(column):
    return {"number": "F8.2", "date": "DATE11"}.get(column.kind) or f"A{column.storage_width()}"


def stata_format(column):
    return {"number": "%9.0g", "date": "%td"}.get(column.kind) or f"%{column.storage_width()}s"


def later_visit_dates(data):
    """The visit-date columns of the timepoints after the first (t2_, t3_, ...)."""
    return [c.name for c in data.columns if c.name.endswith("_visit_date") and c.name[:3] != "t1_"]


def test_empty_later_visits_keep_their_codebook_types_in_spss(baseline_only_trial, tmp_path):
    data = Dataset(baseline_only_trial, "wide")
    writers.write_sav(data, tmp_path / "d.sav")
    df, meta = pyreadstat.read_sav(tmp_path / "d.sav", user_missing=True)
    assert list(df.columns) == data.names and len(df) == 8
    empty = later_visit_dates(data)
    assert empty and "t3_visit_date" in empty and df[empty].isna().all().all()
    assert df["t1_panss_p1"].notna().all()  # the baseline is there: the empties are real ones
    for c in data.columns:
        stored = "string" if c.kind == "string" else "double"
        assert meta.readstat_variable_types[c.name] == stored, c.name
        assert meta.original_variable_types[c.name] == spss_format(c), c.name
        if c.kind == "string":
            assert meta.variable_storage_width[c.name] == c.storage_width(), c.name
    assert meta.original_variable_types["t3_visit_date"] == "DATE11"
    assert meta.original_variable_types["participant_id"] == "A30"
    # Missing codes still work beside the declared types.
    assert meta.missing_ranges["t3_panss_p1"] == [{"lo": -93.0, "hi": -91.0}]
    assert df["participant_id"].str.startswith("DK").all()  # padding is not part of a value


def test_empty_later_visits_keep_their_codebook_types_in_stata(baseline_only_trial, tmp_path):
    data = Dataset(baseline_only_trial, "wide")
    writers.write_dta(data, tmp_path / "d.dta")
    df, meta = pyreadstat.read_dta(tmp_path / "d.dta", user_missing=True)
    assert list(df.columns) == data.names and len(df) == 8
    assert df[later_visit_dates(data)].isna().all().all()
    for c in data.columns:
        stored = "string" if c.kind == "string" else "double"
        assert meta.readstat_variable_types[c.name] == stored, c.name
        assert meta.original_variable_types[c.name] == stata_format(c), c.name
        if c.kind == "string":  # readstat counts the NUL that ends a Stata str# in memory
            assert meta.variable_storage_width[c.name] == c.storage_width() + 1, c.name
    assert meta.original_variable_types["t3_visit_date"] == "%td"
    assert not any("\0" in v for v in df["participant_id"])  # padding is not part of a value


def test_dates_with_data_read_back_as_the_same_days(filled_trial, tmp_path):
    trial, _ = filled_trial
    data = Dataset(trial, "long")
    rows = list(data.rows())
    expected = [row[data.names.index("visit_date")] for row in rows]
    writers.write_sav(data, tmp_path / "d.sav")
    writers.write_dta(data, tmp_path / "d.dta")
    for df, _ in (pyreadstat.read_sav(tmp_path / "d.sav"), pyreadstat.read_dta(tmp_path / "d.dta")):
        got = [None if v is None or v != v else v for v in df["visit_date"]]
        assert got == expected and any(expected)


class _TooLong:
    columns = [Column("id", "Id", "string", width=3)]
    names = ["id"]
    missing_codes, missing_labels = [], {}

    def __len__(self):
        return 1

    def rows(self):
        yield ["ABCD"]


def test_a_value_longer_than_its_declared_width_stops_the_export(tmp_path):
    with pytest.raises(ValueError, match="longer than its width"):
        writers.write_sav(_TooLong(), tmp_path / "d.sav")


def pspp_dictionary(path, tmp_path):
    """GNU PSPP's DISPLAY DICTIONARY of a .sav file: {table title: [rows as dicts]}."""
    if not PSPP:
        if os.environ.get("REQUIRE_PSPP"):
            pytest.fail("pspp is not installed (scripts/ensure-pspp.sh installs it)")
        pytest.skip("pspp is not installed (`make test` installs Debian's pspp when root)")
    syntax = tmp_path / "show.sps"
    syntax.write_text(f"GET FILE='{path}'.\nDISPLAY DICTIONARY.\n")
    out = tmp_path / "dictionary.csv"
    subprocess.run(
        [PSPP, "-O", "format=csv", "-o", str(out), str(syntax)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    tables, title, lines = {}, None, []
    for line in [*out.read_text().splitlines(), ""]:
        if line.startswith("Table: ") or not line:
            if title and lines:
                tables.setdefault(title, list(csv.DictReader(io.StringIO("\n".join(lines)))))
            title, lines = (line[len("Table: ") :], []) if line else (None, [])
        elif title:
            lines.append(line)
    return tables


def test_pspp_reads_the_codebook_types_and_labels(baseline_only_trial, tmp_path):
    data = Dataset(baseline_only_trial, "wide")
    writers.write_sav(data, tmp_path / "d.sav")
    tables = pspp_dictionary(tmp_path / "d.sav", tmp_path)
    variables = {row["Name"]: row for row in tables["Variables"]}
    assert list(variables) == data.names
    for c in data.columns:
        assert variables[c.name]["Print Format"] == spss_format(c), c.name
        assert variables[c.name]["Label"] == c.label, c.name
    assert variables["t3_visit_date"]["Print Format"] == "DATE11"
    assert variables["t3_panss_p1"]["Missing Values"] == "-93 THRU -91"
    # PSPP names a variable by its label in the value-label table, on its first row only.
    found, label = {}, None
    for row in tables["Value Labels"]:
        if row["Label"] is None:  # the footnote: "a. User-missing value"
            continue
        label = row["Variable Value"] or label
        found.setdefault(label, {})[row[""]] = row["Label"]
    for c in data.columns:
        if c.kind == "number" and c.value_labels:
            shown = {float(v.removesuffix("[a]")): text for v, text in found[c.label].items()}
            assert {float(k): v for k, v in c.value_labels.items()}.items() <= shown.items()
    p1 = next(c for c in data.columns if c.name == "t3_panss_p1")
    assert found[p1.label]["-91.00[a]"] == "ND: Not done"  # [a]: user-missing


def test_released_datasets_declare_the_width_of_every_text_column(filled_trial, tmp_path):
    trial, _ = filled_trial
    for data in (ProcessDataset(trial), KeyDataset(trial)):
        writers.write_sav(data, tmp_path / "r.sav")
        df, meta = pyreadstat.read_sav(tmp_path / "r.sav")
        assert list(df.columns) == data.names and len(df) == len(data)
        for c in data.columns:
            if c.kind == "string":
                assert meta.variable_storage_width[c.name] == c.storage_width() > 0, c.name


def test_a_file_of_no_rows_still_has_every_codebook_type_and_width(baseline_only_trial, tmp_path):
    """An export before anyone is randomized (or of a site with no one yet): no value to size a
    string by, and still every column has its codebook type, format and width."""
    data = Dataset(baseline_only_trial, "wide", sites=[])
    assert len(data) == 0
    writers.write_sav(data, tmp_path / "d.sav")
    writers.write_dta(data, tmp_path / "d.dta")
    for path, fmt, nul in (("d.sav", spss_format, 0), ("d.dta", stata_format, 1)):
        read = pyreadstat.read_sav if path.endswith("sav") else pyreadstat.read_dta
        df, meta = read(tmp_path / path, user_missing=True)
        assert list(df.columns) == data.names and len(df) == 0 and meta.number_rows == 0
        for c in data.columns:
            stored = "string" if c.kind == "string" else "double"
            assert meta.readstat_variable_types[c.name] == stored, (path, c.name)
            assert meta.original_variable_types[c.name] == fmt(c), (path, c.name)
            if c.kind == "string":
                assert meta.variable_storage_width[c.name] == c.storage_width() + nul, c.name
    tables = pspp_dictionary(tmp_path / "d.sav", tmp_path)
    variables = {row["Name"]: row for row in tables["Variables"]}
    assert list(variables) == data.names
    for c in data.columns:
        assert variables[c.name]["Print Format"] == spss_format(c), c.name
    assert variables["participant_id"]["Print Format"] == "A30"
