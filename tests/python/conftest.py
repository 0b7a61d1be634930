"""Shared helpers of the Python tests: the shared test data, oracle rows and float comparison.

The shared folder is ``$SGVLM_SHARED``, else ``../shared`` beside the repository, else ``/work/shared`` (as for the
Rust tests).
"""

import json
import math
import os
import pathlib
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
STUB_SWIFT = pathlib.Path(__file__).resolve().parent / "stub_swift"

#: Oracle kinds whose reference values come from Python's Unicode digit rules, which sgvlm does not follow
#: (README, "Where we differ from the Python reference, on purpose"); see crates/eval/tests/oracle_rewards.rs.
UNICODE_KINDS = {
    "unicode_digits",
    "unicode_letters",
    "unicode_junk",
    "unicode_label",
    "other_line_separator",
    "superscript_digit_in_rel",
}

TOL = 2e-9


def shared_dir() -> pathlib.Path:
    env = os.environ.get("SGVLM_SHARED")
    if env:
        return pathlib.Path(env)
    beside = REPO.parent / "shared"
    return beside if beside.is_dir() else pathlib.Path("/work/shared")


def oracle_rows(name: str):
    """Rows of ``shared/testdata/oracle/<name>``, split on ``\\n`` only (the texts hold other line breaks)."""
    path = shared_dir() / "testdata" / "oracle" / name
    if not path.is_file():
        pytest.fail(f"oracle file {path} not found: set SGVLM_SHARED to the shared folder")
    text = path.read_bytes().decode("utf-8")
    return [json.loads(line) for line in text.split("\n") if line.strip()]


def oracle_json(name: str):
    return json.loads((shared_dir() / "testdata" / "oracle" / name).read_text("utf-8"))


def diff(expected, actual, path=""):
    """Differences between JSON-like values: floats within 2e-9, everything else exact."""
    out = []
    if isinstance(expected, dict) and isinstance(actual, dict):
        for k, v in expected.items():
            if k not in actual:
                out.append(f"{path}/{k}: missing")
            else:
                out.extend(diff(v, actual[k], f"{path}/{k}"))
        out.extend(f"{path}/{k}: unexpected key" for k in actual if k not in expected)
    elif isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        for i, (e, a) in enumerate(zip(expected, actual)):
            out.extend(diff(e, a, f"{path}[{i}]"))
    elif isinstance(expected, float) or isinstance(actual, float):
        ok = isinstance(actual, (int, float)) and not isinstance(actual, bool) and not isinstance(expected, bool)
        if not ok or abs(expected - actual) > TOL or math.isnan(expected) != math.isnan(actual):
            out.append(f"{path}: expected {expected!r}, got {actual!r}")
    elif expected != actual or type(expected) is not type(actual):
        out.append(f"{path}: expected {expected!r}, got {actual!r}")
    return out


@pytest.fixture
def swift_plugin(monkeypatch):
    """``sgvlm.swift_plugin`` imported against the stand-in ``swift`` package, with a fresh registry."""
    monkeypatch.syspath_prepend(str(STUB_SWIFT))
    for name in [m for m in sys.modules if m == "swift" or m.startswith("swift.") or m == "sgvlm.swift_plugin"]:
        monkeypatch.delitem(sys.modules, name)
    import sgvlm.swift_plugin as plugin

    return plugin
