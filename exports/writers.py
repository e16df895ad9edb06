"""Write a dataset (exports.dataset.Dataset, or exports.released.ProcessDataset or KeyDataset:
`columns`, `rows()`, `len()`) as CSV with a codebook, SPSS .sav or Stata .dta.

CSV is streamed row by row. pyreadstat writes a whole data frame at once, so .sav and .dta are
built column-wise in NumPy arrays (8 bytes a cell, not a Python object a cell).

Missing-value codes (ND, RF, NA, ...) are kept, not blanked: CSV writes the code itself (as
REDCap does); SPSS gets negative numbers declared user-missing and labelled; Stata gets extended
missing values .a, .b, ... labelled likewise. The codebook lists them.
"""

import csv
import datetime
import io
import struct
import zipfile

import numpy as np
import pandas as pd
import pyreadstat

from imrtrial.spreadsheets import safe_text

SPSS_MISSING_BASE = -91  # first missing code -> -91, second -> -92, ... down to -99
STATA_LETTERS = "abcdefghijklmnopqrstuvwxyz"
NONE = type(None)
END_RECORD = struct.pack("<2i", 999, 0)  # a .sav dictionary ends with this record
SPSS_EPOCH = datetime.date(1582, 10, 14).toordinal()  # SPSS dates count seconds from this day
STATA_EPOCH = datetime.date(1960, 1, 1).toordinal()  # Stata %td dates count days from this day


def write_csv(dataset, out, *, progress=None):
    """Write the rows as UTF-8 CSV (header of variable names) to the text stream `out`.

    Cells are written as the csv module writes them (None empty, dates ISO, numbers as Python
    prints them); only text columns need the formula guard, so only they are touched."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(dataset.names)
    total, n = len(dataset), 0
    for row in csv_rows(dataset):
        writer.writerow(row)
        n += 1
        if progress and n % 1000 == 0:
            progress(n, total)
    return n


def csv_rows(dataset):
    """The dataset's rows as CSV cells (text guarded against formulas): what write_csv writes,
    also streamed by the web API (api.views), so both give the same file."""
    text = [i for i, c in enumerate(dataset.columns) if c.kind == "string"]
    for row in dataset.rows():
        for i in text:
            if row[i]:
                row[i] = safe_text(row[i])
        yield row


def codebook_rows(dataset):
    missing = ", ".join(f"{c} = {dataset.missing_labels[c]}" for c in dataset.missing_codes)
    yield [
        "variable",
        "label",
        "type",
        "values",
        "missing_codes",
        "instrument",
        "source",
        "outcome",
    ]
    for c in dataset.columns:
        values = "; ".join(f"{k} = {v}" for k, v in c.value_labels.items())
        yield [
            c.name,
            c.label,
            c.kind,
            values,
            missing if c.coded_missing else "",
            c.instrument,
            c.source,
            c.outcome,
        ]


def write_csv_bundle(dataset, out, *, stem, notes="", progress=None, tables=()):
    """A zip holding <stem>.csv, <stem>-codebook.csv and README.txt, written to binary `out`;
    and for each (suffix, table) of `tables` (register data: exports.register_data),
    <stem>-<suffix>.csv with its own codebook. Returns the main dataset's rows."""
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        n = _write_csv_member(bundle, f"{stem}.csv", dataset, progress)
        _write_codebook(bundle, f"{stem}-codebook.csv", dataset)
        for suffix, table in tables:
            _write_csv_member(bundle, f"{stem}-{suffix}.csv", table, None)
            _write_codebook(bundle, f"{stem}-{suffix}-codebook.csv", table)
        bundle.writestr("README.txt", notes)
    return n


def _write_csv_member(bundle, name, dataset, progress):
    with bundle.open(name, "w", force_zip64=True) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        n = write_csv(dataset, text, progress=progress)
        text.flush()
        text.detach()
    return n


def _write_codebook(bundle, name, dataset):
    codebook = io.StringIO()
    csv.writer(codebook, lineterminator="\n").writerows(
        [[safe_text(str(cell)) for cell in row] for row in codebook_rows(dataset)]
    )
    bundle.writestr(name, codebook.getvalue())


# --- SPSS and Stata --------------------------------------------------------------------------


def frame(dataset, *, missing="spss", progress=None):
    """(DataFrame, value labels, missing declarations, formats) for pyreadstat.

    Each column's type, width and format come from its Column (the codebook), never from the
    rows, so a column empty so far (a visit not yet due) has the layout it will have when filled:
    numbers and dates are doubles (dates in the format's own epoch, shown as DATE11 / %td) and
    strings have their declared width (Column.storage_width).

    missing="spss": codes become -91, -92, ... ; missing="stata": extended missing letters.
    Rows are converted a block at a time with NumPy, so no Python loop runs per number cell."""
    columns, total = dataset.columns, len(dataset)
    kinds = {c.kind for c in columns} - {"number", "date", "string"}
    if kinds:
        raise ValueError(f"Unknown column kind {kinds.pop()!r}")
    numeric = [i for i, c in enumerate(columns) if c.kind == "number"]
    dates = [i for i, c in enumerate(columns) if c.kind == "date"]
    strings = [i for i, c in enumerate(columns) if c.kind == "string"]
    code_number = {
        code: float(SPSS_MISSING_BASE - k) for k, code in enumerate(dataset.missing_codes)
    }
    numbers = np.full((total, len(numeric)), np.nan)
    days = np.full((total, len(dates)), np.nan)  # proleptic Gregorian ordinals
    texts = np.empty((total, len(strings)), dtype=object)
    coded = np.zeros(len(numeric), dtype=bool)  # numeric columns holding a missing code
    done = 0

    def convert(block):
        nonlocal done
        rows = np.array(block, dtype=object)
        if rows.ndim != 2:  # a ragged row would be a bug in the dataset
            raise ValueError("Rows of unequal length")
        n = len(block)
        part = rows[:, numeric]
        # One pass finds each cell's type; only the few text cells (missing codes) are looked at.
        types = np.fromiter(map(type, part.ravel()), object, part.size).reshape(part.shape)
        text = np.equal(types, str)
        if text.any():
            for r, k in zip(*np.nonzero(text), strict=True):
                number = code_number.get(part[r, k])
                if number is not None:
                    coded[k] = True
                    part[r, k] = number
        part[np.equal(types, NONE)] = np.nan
        numbers[done : done + n] = part.astype(np.float64)
        cells = rows[:, dates].ravel()
        days[done : done + n] = np.fromiter(
            (np.nan if d is None else d.toordinal() for d in cells), np.float64, len(cells)
        ).reshape(n, len(dates))
        texts[done : done + n] = rows[:, strings]
        done += n
        if progress:
            progress(done, total)

    block = []
    for row in dataset.rows():
        block.append(row)
        if len(block) == 2000:
            convert(block)
            block = []
    if block:
        convert(block)
    # Rows added since the count are not read.
    numbers, days, texts = numbers[:done], days[:done], texts[:done]
    data, formats = {}, {}
    for k, i in enumerate(numeric):
        data[columns[i].name] = numbers[:, k]
        formats[columns[i].name] = "F8.2" if missing == "spss" else "%9.0g"
    for k, i in enumerate(dates):
        if missing == "spss":  # seconds since the start of the Gregorian calendar
            data[columns[i].name] = (days[:, k] - SPSS_EPOCH) * 86400.0
            formats[columns[i].name] = "DATE11"
        else:  # days since 1 January 1960
            data[columns[i].name] = days[:, k] - STATA_EPOCH
            formats[columns[i].name] = "%td"
    for k, i in enumerate(strings):
        c = columns[i]
        width = c.storage_width()
        values = np.where(np.equal(texts[:, k], None), "", texts[:, k])
        data[c.name] = _fixed_width(values, c, width, "\0" if missing == "stata" else " ")
        formats[c.name] = f"A{width}" if missing == "spss" else f"%{width}s"
    # Text as plain Python strings (object), not pandas' string dtype, which pyreadstat reads
    # through pandas' boxing a cell at a time (no measurable gain in CPU time, see issue 17).
    df = pd.DataFrame(
        {
            c.name: pd.Series(data[c.name], dtype=object, copy=False)
            if c.kind == "string"
            else data[c.name]
            for c in columns
        },
        copy=False,
    )
    coded_names = {columns[i].name for k, i in enumerate(numeric) if coded[k]}
    value_labels = {}
    for c in columns:
        labels = {}
        if c.value_labels and c.kind == "number":
            labels = {float(k): str(v) for k, v in c.value_labels.items()}
        # Stata labels a letter only in a column that holds one (pyreadstat checks the type).
        if c.name in coded_names or (missing == "spss" and c.coded_missing and c.kind == "number"):
            for k, code in enumerate(dataset.missing_codes):
                key = STATA_LETTERS[k] if missing == "stata" else code_number[code]
                labels[key] = f"{code}: {dataset.missing_labels[code]}"
        if labels:
            value_labels[c.name] = labels
    if missing == "spss":
        low = SPSS_MISSING_BASE - max(len(dataset.missing_codes) - 1, 0)
        declared = {
            columns[i].name: [{"lo": float(low), "hi": float(SPSS_MISSING_BASE)}]
            for i in numeric
            if columns[i].coded_missing
        }
    else:
        letters = {number: STATA_LETTERS[k] for k, number in enumerate(code_number.values())}
        for name in coded_names:
            df[name] = df[name].astype(object).map(lambda v: letters.get(v, v))
        declared = {name: list(STATA_LETTERS[: len(dataset.missing_codes)]) for name in coded_names}
    return df, value_labels, declared, formats


def _fixed_width(values, column, width, pad):
    """The column's text, its first cell padded to the declared width.

    pyreadstat sizes a string variable by its longest value; one cell padded to the width makes
    that the declared width without changing any value: SPSS pads every string with blanks
    anyway, and a Stata str# ends at its first NUL byte."""
    # A character is at most 4 bytes in UTF-8: only a value with more than width / 4 characters
    # can be too long, so few values are encoded to be measured.
    near = values[np.fromiter(map(len, values), np.int64, len(values)) * 4 > width]
    if any(len(v.encode()) > width for v in near):
        raise ValueError(f"A value of {column.name!r} is longer than its width ({width} bytes)")
    if len(values):
        values[0] += pad * (width - len(values[0].encode()))
    return values


def write_sav(dataset, path, *, file_label="", progress=None):
    df, value_labels, missing, formats = frame(dataset, missing="spss", progress=progress)
    options = sav_options(dataset, value_labels, missing, formats, file_label=file_label)
    if len(df):
        pyreadstat.write_sav(df, path, **options)
    else:
        pyreadstat.write_sav(_blank_row(df, dataset, " "), path, **options)
        _drop_the_blank_sav_case(path)
    return len(df)


def _blank_row(df, dataset, pad):
    """One row of nothing (NaN; text as padding only) that gives each string its width.

    pyreadstat sizes a string by its longest value, so a file of no rows would hold every string
    as one byte wide; it is written with this row, which is then taken out of the file."""
    return pd.DataFrame(
        {
            c.name: pd.Series([pad * c.storage_width()], dtype=object)
            if c.kind == "string"
            else np.array([np.nan])
            for c in dataset.columns
        }
    )[list(df.columns)]


def _drop_the_blank_sav_case(path):
    """Remove the only case of an uncompressed .sav file: its case count (header offset 80)
    becomes 0 and its data (the last nominal-case-size x 8 bytes, after the dictionary's end
    record 999) are cut off. Anything else found there stops the export."""
    with open(path, "r+b") as f:
        head = f.read(84)
        _, nominal, compression, _, cases = struct.unpack("<5i", head[64:84])
        size = f.seek(0, io.SEEK_END)
        start = size - nominal * 8
        f.seek(start - 8)
        end_record = f.read(8)
        if head[:4] != b"$FL2" or compression or cases != 1 or end_record != END_RECORD:
            raise ValueError("Unexpected .sav layout: the blank case was not removed")
        f.seek(80)
        f.write(struct.pack("<i", 0))
        f.truncate(start)


def _drop_the_blank_dta_case(path):
    """Remove the only observation of a Stata 118/119 .dta file: N becomes 0, the row between
    <data> and </data> is cut out and the map's offsets after it move back."""
    with open(path, "rb") as f:
        raw = bytearray(f.read())
    release = raw[raw.index(b"<release>") + 9 : raw.index(b"</release>")]
    n_at = raw.index(b"<N>") + 3
    map_at = raw.index(b"<map>") + 5
    offsets = list(struct.unpack("<14q", raw[map_at : map_at + 112]))
    data_at = offsets[9] + len(b"<data>")
    end_at = raw.index(b"</data>", data_at)
    ok = release in (b"118", b"119") and b"<byteorder>LSF</byteorder>" in raw[:200]
    ok = ok and raw[offsets[10] : offsets[11]] == b"<strls></strls>"  # no long string refers to it
    if not ok or struct.unpack("<q", raw[n_at : n_at + 8])[0] != 1:
        raise ValueError("Unexpected .dta layout: the blank observation was not removed")
    width = end_at - data_at
    raw[n_at : n_at + 8] = struct.pack("<q", 0)
    offsets[10:] = [at - width for at in offsets[10:]]
    raw[map_at : map_at + 112] = struct.pack("<14q", *offsets)
    del raw[data_at:end_at]
    with open(path, "wb") as f:
        f.write(raw)


def sav_options(dataset, value_labels, missing, formats, *, file_label=""):
    """pyreadstat.write_sav's arguments besides the frame (also used by bench/export.py's floor,
    so it writes the same file)."""
    return {
        "file_label": file_label[:64],
        "column_labels": {c.name: c.label[:256] for c in dataset.columns},
        "variable_value_labels": value_labels,
        "missing_ranges": missing,
        "variable_format": formats,
        "variable_measure": {
            c.name: "nominal" if c.value_labels or c.kind == "string" else "scale"
            for c in dataset.columns
            if c.kind != "date"
        },
    }


def write_dta(dataset, path, *, file_label="", progress=None):
    df, value_labels, missing, formats = frame(dataset, missing="stata", progress=progress)
    # Stata value labels are integer-keyed: drop fractional keys (none are expected).
    value_labels = {
        name: {k: v for k, v in labels.items() if isinstance(k, str) or float(k).is_integer()}
        for name, labels in value_labels.items()
    }
    options = {
        "file_label": file_label[:80],
        "column_labels": {c.name: c.label[:80] for c in dataset.columns},
        "variable_value_labels": value_labels,
        "missing_user_values": missing,
        "variable_format": formats,
    }
    if len(df):
        pyreadstat.write_dta(df, path, **options)
    else:
        pyreadstat.write_dta(_blank_row(df, dataset, "\0"), path, **options)
        _drop_the_blank_dta_case(path)
    return len(df)
