"""Bounded decoding of request bodies: nesting depth and expanded size are limited while decoding.

Deeply nested input is refused before any recursive code sees it (Python's recursion limit turns it into
a RecursionError, a 500 and a stalled event loop otherwise), and a YAML document's aliases may not expand
it past a fixed size (the "billion laughs" attack: a few hundred bytes of anchors and aliases that
expand to gigabytes once encoded or validated). kube-apiserver bounds both too (its decoders refuse
more than 10,000 levels and excessive aliasing); the depth here is lower because Python recursion is
shallower than Go's: everything downstream (validation, field management, encoding) handles it safely.

Both limits are checked in time proportional to the body: JSON is decoded by orjson, whose own limit
stops at 1,024 levels, and its containers are walked once without recursion; YAML is composed with a
depth counter and each node's expanded size is computed once, from its children's.
"""

from __future__ import annotations

from typing import Any

import orjson
import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent, MappingStartEvent, SequenceStartEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner
from yaml.tokens import Token

from kubellm.apis import errors

MAX_DEPTH = 100
"""How deeply arrays and objects may nest in a request body."""
MAX_EXPANDED = 6 * 1024 * 1024
"""The most a YAML body may expand to once its aliases are resolved, counted as one unit per node plus the
characters of each scalar: twice the body size limit, whatever the body's own size."""


def too_deep() -> errors.StatusError:
    return errors.bad_request(f"the request body is nested too deeply: more than {MAX_DEPTH} levels")


def recursive_alias() -> errors.StatusError:
    return errors.bad_request("the request body is not valid YAML: an alias refers to a node that contains it")


def too_large() -> errors.StatusError:
    return errors.bad_request("the request body expands to too much data: its YAML aliases would expand it "
                              f"past {MAX_EXPANDED} units")


def check_depth(value: Any) -> None:
    """Raise 400 when arrays and objects in `value` nest more than MAX_DEPTH levels (walked without recursion)."""
    if type(value) not in (dict, list):
        return
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise too_deep()
        children = node.values() if type(node) is dict else node
        stack.extend((child, depth + 1) for child in children if type(child) in (dict, list))


def loads_json(raw: bytes) -> Any:
    """JSON → Python, with nesting bounded. A body with fewer brackets than the limit cannot exceed it, so most
    bodies are not walked at all."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if str(exc).startswith("depth limit exceeded"):  # orjson's own limit, past ours
            raise too_deep() from None
        raise
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH:
        check_depth(value)
    return value


class _BoundedComposer(Composer):
    """YAML composition that refuses more than MAX_DEPTH levels of nesting, aliases to a node that contains them,
    and any document whose aliases would expand it past MAX_EXPANDED."""

    yaml_implicit_resolvers = {  # timestamps stay strings, as in Kubernetes' YAML-to-JSON conversion
        k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
        for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def __init__(self) -> None:
        super().__init__()
        self._depth = 0
        self._sizes: dict[int, int] = {}

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        if self.check_event(AliasEvent):  # type: ignore[attr-defined]
            named = self.anchors.get(self.peek_event().anchor)  # type: ignore[attr-defined]
            if named is not None and id(named) not in self._sizes:
                raise recursive_alias()  # the alias is inside the node it names, still being composed
        opens = self.check_event(SequenceStartEvent, MappingStartEvent)  # type: ignore[attr-defined]
        self._depth += opens
        if self._depth > MAX_DEPTH:
            raise too_deep()
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= opens
        if node is not None and self._expanded(node) > MAX_EXPANDED:
            raise too_large()
        return node

    def _expanded(self, node: Node) -> int:
        """The size of `node` with every alias in it replaced by what it names. An alias composes to the very
        node it names, already measured, so each node is measured once, from its children's sizes."""
        known = self._sizes.get(id(node))
        if known is not None:
            return known
        if isinstance(node, ScalarNode):
            size = 1 + len(node.value)
        elif isinstance(node, SequenceNode):
            size = 1 + sum(self._sizes.get(id(child), 0) for child in node.value)
        elif isinstance(node, MappingNode):
            size = 1 + sum(self._sizes.get(id(k), 0) + self._sizes.get(id(v), 0) for k, v in node.value)
        else:
            size = 1
        self._sizes[id(node)] = size
        return size


class PyBoundedLoader(_BoundedComposer, Reader, Scanner, Parser, SafeConstructor, Resolver):
    """Safe YAML, bounded, with PyYAML's pure-Python scanner and parser (when libyaml is not installed)."""

    def __init__(self, stream: str | bytes) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        _BoundedComposer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)

    def fetch_flow_collection_start(self, token: type[Token]) -> None:
        # Refused in the scanner already: it looks ahead across open flow collections, in time quadratic in
        # how many are open, so a short `[[[[...` would cost a second before the composer sees any depth.
        if self.flow_level >= MAX_DEPTH:
            raise too_deep()
        super().fetch_flow_collection_start(token)


BoundedLoader: type[Any] = PyBoundedLoader

if yaml.__with_libyaml__:
    from yaml._yaml import CParser

    class CBoundedLoader(_BoundedComposer, CParser, SafeConstructor, Resolver):
        """Safe YAML, bounded, with libyaml's scanner and parser (several times faster; its own nesting limit
        is 1,000) under the bounded composer."""

        def __init__(self, stream: str | bytes) -> None:
            CParser.__init__(self, stream)
            _BoundedComposer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)

    BoundedLoader = CBoundedLoader


def loads_yaml(raw: bytes | str) -> Any:
    """YAML → Python, with nesting and alias expansion bounded (a 400 BadRequest otherwise). A body that is JSON
    (kubectl sends apply patches as JSON) is decoded as JSON: the same value, a hundred times faster."""
    if raw.lstrip()[:1] in (b"{", b"[", "{", "["):
        try:
            return loads_json(raw if isinstance(raw, bytes) else raw.encode())
        except orjson.JSONDecodeError:
            pass  # YAML flow style, not JSON
    try:
        return yaml.load(raw, Loader=BoundedLoader)
    except yaml.YAMLError as exc:
        if "maximum nesting depth" in str(exc):  # libyaml's own limit, past ours
            raise too_deep() from None
        raise
