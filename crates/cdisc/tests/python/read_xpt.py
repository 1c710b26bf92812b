"""Reads a SAS XPORT v5 file with two independent readers, pyreadstat (ReadStat, C) and pandas.read_sas
(pure Python), and prints what each saw as one JSON object on stdout, for the Rust test to compare with
the Dataset-JSON rows of the same dataset.

Usage: python3 read_xpt.py FILE.xpt

Numbers are printed as Python floats (json uses repr, which round-trips exactly), a numeric missing as
null; dates are not converted (day numbers stay numbers). Exits non-zero with a message naming the
missing package if pyreadstat or pandas is not installed: CI installs requirements-test.txt first.
"""

import json
import math
import sys


def require(module):
    try:
        return __import__(module)
    except ImportError:
        sys.exit(
            f"python package {module!r} is not installed; "
            "run: python3 -m pip install -r requirements-test.txt"
        )


def cell(value):
    if isinstance(value, bytes):
        value = value.decode("ascii")
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if value is None:
        return None
    if hasattr(value, "item"):  # numpy scalars
        return cell(value.item())
    return value


def frame_rows(frame):
    return [[cell(v) for v in row] for row in frame.itertuples(index=False, name=None)]


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: read_xpt.py FILE.xpt")
    path = sys.argv[1]
    pyreadstat = require("pyreadstat")
    pandas = require("pandas")

    frame, meta = pyreadstat.read_xport(path, disable_datetime_conversion=True)
    by_readstat = {
        "version": pyreadstat.__version__,
        "table_name": meta.table_name,
        "file_label": meta.file_label,
        "columns": list(frame.columns),
        "labels": list(meta.column_labels),
        "formats": [meta.original_variable_types.get(name) for name in frame.columns],
        "rows": frame_rows(frame),
    }

    frame = pandas.read_sas(path, format="xport", encoding="ascii")
    by_pandas = {
        "version": pandas.__version__,
        "columns": list(frame.columns),
        "rows": frame_rows(frame),
    }
    json.dump({"pyreadstat": by_readstat, "pandas": by_pandas}, sys.stdout)


main()
