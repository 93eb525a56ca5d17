import orjson
import pytest

from spot_extender.serving.wire import BadRequest, encode_entries, filter_error, filter_result, join_entries, parse_args
from tests.helpers import objects as f

POD = f.pod("web-1-a", owner=("ReplicaSet", "web-1"), uid="u1")


def body(**fields) -> bytes:
    return orjson.dumps({"Pod": POD, **fields})


def test_node_names_mode():
    args = parse_args(body(NodeNames=["a", "b"], Nodes=None))
    assert args.node_names == ["a", "b"] and args.nodes is None and args.names == ["a", "b"]


def test_full_nodes_mode():
    args = parse_args(body(Nodes={"metadata": {}, "items": [f.node("a"), f.node("b")]}))
    assert args.nodes is not None and args.node_names is None and args.names == ["a", "b"]


def test_keys_are_matched_case_insensitively_like_go():
    args = parse_args(orjson.dumps({"pod": POD, "nodenames": ["a"]}))
    assert args.names == ["a"]


def test_empty_nodelist_items_null():
    assert parse_args(body(Nodes={"metadata": {}, "items": None})).names == []


def test_golden_filter_result_node_names():
    args = parse_args(body(NodeNames=["s1", "o1", "gone"]))
    out = filter_result(args, ["o1"], {"s1": "on-demand floor 0/1"}, {"gone": "node is cordoned"})
    assert out == (
        b'{"Nodes":null,"NodeNames":["o1"],"FailedNodes":{"s1":"on-demand floor 0/1"},'
        b'"FailedAndUnresolvableNodes":{"gone":"node is cordoned"},"Error":""}'
    )


def test_golden_filter_result_full_nodes():
    s1, o1 = f.node("s1"), f.node("o1", "on-demand")
    args = parse_args(body(Nodes={"items": [s1, o1]}))
    out = orjson.loads(filter_result(args, ["o1"], {"s1": "on-demand floor 0/1"}, {}))
    assert out == {
        "Nodes": {"metadata": {}, "items": [o1]},
        "NodeNames": None,
        "FailedNodes": {"s1": "on-demand floor 0/1"},
        "FailedAndUnresolvableNodes": {},
        "Error": "",
    }


def test_golden_filter_error():
    assert filter_error("syncing") == (
        b'{"Nodes":null,"NodeNames":null,"FailedNodes":{},"FailedAndUnresolvableNodes":{},"Error":"syncing"}'
    )


def test_golden_priority_list_is_a_bare_array():
    chunks = [encode_entries(["s1", "s2"], 10), encode_entries([], 7), encode_entries(["o1"], 4)]
    assert join_entries(chunks) == (
        b'[{"Host":"s1","Score":10},{"Host":"s2","Score":10},{"Host":"o1","Score":4}]'
    )
    assert join_entries([]) == b"[]"


def test_priority_list_escapes_odd_host_names():
    odd = 'a"b\\c'
    assert orjson.loads(join_entries([encode_entries([odd], 3)])) == [{"Host": odd, "Score": 3}]


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"not json", "not valid JSON"),
        (b"[1,2]", "must be a JSON object"),
        (b"{}", "Pod is missing"),
        (orjson.dumps({"Pod": "x", "NodeNames": []}), "Pod is missing or not an object"),
        (orjson.dumps({"Pod": {}, "NodeNames": []}), "Pod.metadata"),
        (orjson.dumps({"Pod": {"metadata": {"name": 5}}, "NodeNames": []}), "metadata.name must be a string"),
        (orjson.dumps({"Pod": {"metadata": {"labels": []}}, "NodeNames": []}), "labels must be an object"),
        (orjson.dumps({"Pod": {"metadata": {"ownerReferences": {}}}, "NodeNames": []}), "ownerReferences"),
        (orjson.dumps({"Pod": POD}), "one of NodeNames or Nodes"),
        (orjson.dumps({"Pod": POD, "NodeNames": "a"}), "NodeNames must be a list"),
        (orjson.dumps({"Pod": POD, "NodeNames": [1]}), "NodeNames must be a list"),
        (orjson.dumps({"Pod": POD, "Nodes": []}), "Nodes must be a NodeList"),
        (orjson.dumps({"Pod": POD, "Nodes": {"items": [{"metadata": {}}]}}), "Nodes.items[0]"),
        (orjson.dumps({"Pod": POD, "Nodes": {"items": ["x"]}}), "Nodes.items[0]"),
        # Each of these passed validation and failed later, as a 500 or a filter Error.
        (orjson.dumps({"Pod": {"metadata": {"name": "p"}}, "Nodes": {"items": [{"metadata": None}]}}),
         "Nodes.items[0] has no metadata.name"),
        (orjson.dumps({"Pod": POD, "Nodes": {"items": [{"metadata": {"name": "n", "labels": ["a"]}}]}}),
         "metadata.labels must map strings to strings"),
        (orjson.dumps({"Pod": POD, "Nodes": {"items": [{"metadata": {"name": "n", "labels": {"a": 1}}}]}}),
         "metadata.labels must map strings to strings"),
        (orjson.dumps({"Pod": POD, "Nodes": {"items": [{"metadata": {"name": "n"}, "status": "Ready"}]}}),
         "status must be an object"),
        (orjson.dumps({"Pod": POD, "Nodes": {"items": [{"metadata": {"name": "n"}, "spec": []}]}}),
         "spec must be an object"),
        (orjson.dumps({"Pod": POD, "Nodes": {"items": [{"metadata": {"name": "n"}, "spec": {"taints": [{"key": ["k"]}]}}]}}),
         "taints must be a list of taints with string keys"),
        (orjson.dumps({"Pod": POD, "Nodes": {"items": [{"metadata": {"name": "n"}, "status": {"conditions": ["Ready"]}}]}}),
         "conditions must be a list of objects"),
        (orjson.dumps({"Pod": POD, "Nodes": {"items": [{"metadata": {"name": "n"}, "status": {"allocatable": "4"}}]}}),
         "allocatable must be an object"),
    ],
)
def test_bad_input(raw, message):
    with pytest.raises(BadRequest, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_args(raw)
