"""CSV with codebook, SPSS and Stata: what is written reads back with its labels."""

import csv
import io
import math
import zipfile

import numpy as np
import pyreadstat
import pytest

from exports import writers
from exports.columns import Column
from exports.dataset import Dataset


def test_csv_bundle_holds_data_codebook_and_notes(filled_trial):
    trial, _ = filled_trial
    data = Dataset(trial, "long")
    out = io.BytesIO()
    n = writers.write_csv_bundle(data, out, stem="dk-long", notes="read me")
    bundle = zipfile.ZipFile(out)
    assert sorted(bundle.namelist()) == ["README.txt", "dk-long-codebook.csv", "dk-long.csv"]
    rows = list(csv.reader(io.StringIO(bundle.read("dk-long.csv").decode("utf-8"))))
    assert rows[0] == data.names and len(rows) - 1 == n == 36
    followup = [r for r in rows[1:] if r[data.names.index("timepoint")] == "followup"]
    assert "ND" in {r[data.names.index("panss_p1")] for r in followup}
    codebook = list(csv.DictReader(io.StringIO(bundle.read("dk-long-codebook.csv").decode())))
    assert [r["variable"] for r in codebook] == data.names
    p1 = next(r for r in codebook if r["variable"] == "panss_p1")
    assert p1["label"].endswith("P1 Delusions") and "ND = Not done" in p1["missing_codes"]
    sex = next(r for r in codebook if r["variable"] == "sex")
    assert sex["values"] == "1 = Female; 2 = Male"


def test_spss_file_reads_back_with_variable_value_and_missing_labels(filled_trial, tmp_path):
    trial, _ = filled_trial
    data = Dataset(trial, "long")
    writers.write_sav(data, tmp_path / "d.sav", file_label="Danish")
    df, meta = pyreadstat.read_sav(tmp_path / "d.sav", user_missing=True)
    assert list(df.columns) == data.names and len(df) == 36
    labels = dict(zip(meta.column_names, meta.column_labels, strict=True))
    assert labels["panss_p1"] == "Positive and Negative Syndrome Scale (PANSS): P1 Delusions"
    assert meta.variable_value_labels["sex"] == {1.0: "Female", 2.0: "Male"}
    assert meta.variable_value_labels["panss_p1"][-91.0] == "ND: Not done"
    assert meta.missing_ranges["panss_p1"] == [{"lo": -93.0, "hi": -91.0}]
    assert -91.0 in set(df["panss_p1"])  # the code, declared user-missing
    plain, _ = pyreadstat.read_sav(tmp_path / "d.sav")  # without user_missing: system-missing
    assert -91.0 not in set(plain["panss_p1"].dropna())
    assert set(df["arm"]) == {"A", "B"}


def test_stata_file_reads_back_with_labels_and_extended_missing(filled_trial, tmp_path):
    trial, _ = filled_trial
    data = Dataset(trial, "wide")
    writers.write_dta(data, tmp_path / "d.dta", file_label="Danish")
    df, meta = pyreadstat.read_dta(tmp_path / "d.dta", user_missing=True)
    assert list(df.columns) == data.names and len(df) == 12
    labels = dict(zip(meta.column_names, meta.column_labels, strict=True))
    assert labels["sex"] == "Sex (baseline)"
    assert meta.variable_value_labels["sex"] == {1: "Female", 2: "Male"}
    p1 = next(c.name for c in data.columns if c.source == "panss.p1" and c.name.startswith("t3"))
    assert "a" in set(df[p1])  # ND is Stata's .a
    assert meta.variable_value_labels[p1]["a"] == "ND: Not done"


class _Malicious:
    """A dataset whose text cells would run as spreadsheet formulas."""

    columns = [Column("id", "Id", "string"), Column("x", "X", "number")]
    names = ["id", "x"]
    missing_codes, missing_labels = [], {}

    def __len__(self):
        return 3

    def rows(self):
        yield ['=HYPERLINK("http://evil","click")', -5]
        yield ["+1+1", 2.5]
        yield ["@SUM(A1)", None]


def test_csv_cells_that_would_run_as_formulas_are_quoted_but_numbers_are_not():
    out = io.StringIO()
    writers.write_csv(_Malicious(), out)
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows[1] == ['\'=HYPERLINK("http://evil","click")', "-5"]
    assert rows[2] == ["'+1+1", "2.5"]
    assert rows[3] == ["'@SUM(A1)", ""]


def reference_frame(data, rows):
    """What writers.frame must hold, converted cell by cell: a missing code becomes -91, -92,
    ...; None NaN; a date the seconds since 14 October 1582; text stays text."""
    numbers = {
        code: float(writers.SPSS_MISSING_BASE - k) for k, code in enumerate(data.missing_codes)
    }
    out = {c.name: [] for c in data.columns}
    for row in rows:
        for c, cell in zip(data.columns, row, strict=True):
            if c.kind == "string":
                out[c.name].append("" if cell is None else cell)
            elif cell is None:
                out[c.name].append(math.nan)
            elif c.kind == "date":
                out[c.name].append((cell.toordinal() - writers.SPSS_EPOCH) * 86400.0)
            else:
                out[c.name].append(numbers[cell] if isinstance(cell, str) else float(cell))
    return out


@pytest.mark.parametrize("shape", ["long", "wide"])
def test_the_spss_frame_holds_the_rows_cell_for_cell(filled_trial, shape):
    """The column-wise conversion (NumPy, one type pass) gives what a cell-by-cell conversion of
    the reference rows (the path SQLite takes) gives, in every column, with codes kept."""
    trial, _ = filled_trial
    data, plain = Dataset(trial, shape), Dataset(trial, shape)
    plain.cells_in_sql = False
    expected = reference_frame(data, list(plain.rows()))
    df, _, _, formats = writers.frame(data, missing="spss")
    assert list(df.columns) == data.names
    coded = 0
    for c in data.columns:
        got = list(df[c.name])
        if c.kind == "string":
            assert df[c.name].dtype == object, c.name
            assert [v.rstrip(" ") for v in got] == expected[c.name], c.name
            assert formats[c.name] == f"A{c.storage_width()}"
        else:
            assert df[c.name].dtype == np.float64, c.name
            assert np.array_equal(got, expected[c.name], equal_nan=True), c.name
            coded += sum(v <= writers.SPSS_MISSING_BASE for v in got if v == v)
    assert coded  # the fixture's missing codes are in the frame
