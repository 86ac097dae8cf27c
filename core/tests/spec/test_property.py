"""Property: any document, however malformed, gives an `ExperimentSpec` or a `SpecError`, only.

Random documents mix real keys and component names with arbitrary nested data; near-valid
documents are a valid spec with a few random mutations, so that stage two is reached often.
"""

from __future__ import annotations

import copy

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowforge.errors import SpecError
from flowforge.spec import ExperimentSpec, dump_spec, parse_spec, validate_document

pytestmark = pytest.mark.usefixtures("toys")

TOP = list(ExperimentSpec.model_fields)
KEYS = [*TOP, "params", "solver", "nfe", "metrics", "t_span", "lr", "prediction", "n", "hidden"]
NAMES = ["cond_ot", "vp_linear", "rk4", "heun", "toy_blobs", "toy_mlp", "toy_cfg", "toy_target"]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8)
    | st.sampled_from(NAMES)
)
keys = st.sampled_from(KEYS) | st.text(max_size=6)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(keys, inner, max_size=5)
        | st.dictionaries(st.integers(0, 3) | st.none(), inner, max_size=2)
    ),
    max_leaves=20,
)
documents = values | st.dictionaries(st.sampled_from(TOP) | keys, values, max_size=10)


@st.composite
def near_valid(draw: st.DrawFn, valid: dict) -> dict:
    """`valid` with 1-3 random replacements, deletions or additions somewhere inside it."""
    doc = copy.deepcopy(valid)
    for _ in range(draw(st.integers(1, 3))):
        node = doc
        while True:
            key = draw(st.sampled_from(list(node) if isinstance(node, dict) else range(len(node))))
            child = node[key]
            if not (isinstance(child, dict | list) and child and draw(st.booleans())):
                break
            node = child
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            node[key] = draw(values)
        elif action == "delete":
            del node[key]
        elif isinstance(node, dict):
            node[draw(keys)] = draw(values)
        else:
            node.append(draw(values))
        if not node:
            break
    return doc


def check(doc: object) -> None:
    """The property itself; a valid document must also survive a dump and re-parse unchanged."""
    try:
        spec = validate_document(doc)
    except SpecError as err:
        assert err.issues and all(isinstance(msg, str) and msg for _, msg in err.issues)
        return
    assert isinstance(spec, ExperimentSpec)
    assert parse_spec(dump_spec(spec)) == spec


# near_valid copies `valid_doc`, so sharing the function-scoped fixture across inputs is safe.
FAST = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@FAST
@given(documents)
def test_random_documents_give_a_spec_or_a_spec_error(doc):
    check(doc)


@FAST
@given(st.data())
def test_mutated_valid_specs_give_a_spec_or_a_spec_error(valid_doc, data):
    check(data.draw(near_valid(valid_doc)))


@FAST
@given(st.text(max_size=80))
def test_random_text_gives_a_spec_or_a_spec_error(text):
    try:
        parse_spec(text, "random.yaml")
    except SpecError:
        pass
