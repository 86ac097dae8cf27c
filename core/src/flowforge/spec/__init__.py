"""Experiment specs: YAML files validated in two stages (structure, then each component's params).

from flowforge.spec import load_spec, dump_spec
spec = load_spec("examples/quickstart.yaml")   # SpecError lists every problem, dotted
print(dump_spec(spec))                          # the resolved spec, every default explicit
"""

from flowforge.spec.load import dump_spec, load_spec, parse_spec, read_yaml
from flowforge.spec.models import ComponentRef, ExperimentSpec
from flowforge.spec.resolve import validate_document
from flowforge.spec.sections import COMPONENT_SECTIONS

__all__ = [
    "COMPONENT_SECTIONS",
    "ComponentRef",
    "ExperimentSpec",
    "dump_spec",
    "load_spec",
    "parse_spec",
    "read_yaml",
    "validate_document",
]
