"""FCD through ChemNet (fcd_torch) and core's Frechet distance: zero for a set against itself,
positive between different chemistries, NaN below two molecules, a clear error without fcd_torch."""

from __future__ import annotations

import math
import sys

import pytest

from flowforge.errors import MissingDependencyError
from flowforge.metrics.chemnet import chemnet, fcd

ALCOHOLS = ["CO", "CCO", "CCCO", "CC(C)O", "CCCCO", "OCC(O)CO", "CC(O)CC", "OCCO"]
AROMATICS = ["c1ccccc1", "Cc1ccccc1", "c1ccncc1", "Oc1ccccc1", "c1ccc2ccccc2c1", "Nc1ccccc1"]


def test_fcd_is_zero_on_itself_and_positive_between_chemistries():
    pytest.importorskip("fcd_torch")
    features = chemnet()
    assert fcd(ALCOHOLS, ALCOHOLS, features) == pytest.approx(0.0, abs=1e-6)
    assert fcd(ALCOHOLS, AROMATICS, features) > 1.0
    assert math.isnan(fcd(ALCOHOLS[:1], AROMATICS, features))


def test_missing_fcd_torch_names_the_fix(monkeypatch):
    monkeypatch.setitem(sys.modules, "fcd_torch", None)
    with pytest.raises(MissingDependencyError, match=r"'fcd_torch'.*pip install extra-hint"):
        chemnet(install="pip install extra-hint")
