"""Label and field selectors with the syntax of k8s.io/apimachinery/pkg/labels and pkg/fields."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from kubellm.apis import errors
from kubellm.apis.validation import names

_OPS = ("in", "notin", "=", "==", "!=", "exists", "!", "gt", "lt")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op in ("=", "==", "in"):
            return present and value in self.values
        if self.op in ("!=", "notin"):
            return not present or value not in self.values
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op in ("gt", "lt") and present:
            try:
                have, want = int(value or ""), int(self.values[0])
            except ValueError:
                return False
            return have > want if self.op == "gt" else have < want
        return False

    def __str__(self) -> str:
        if self.op == "exists":
            return self.key
        if self.op == "!":
            return f"!{self.key}"
        if self.op in ("in", "notin"):
            return f"{self.key} {self.op} ({','.join(self.values)})"
        sym = {"gt": ">", "lt": "<"}.get(self.op, self.op)
        return f"{self.key}{sym}{self.values[0]}"


@dataclass(frozen=True)
class LabelSelector:
    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    def empty(self) -> bool:
        return not self.requirements

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


_TOKEN = re.compile(r"\s*(\(|\)|,|!=|==|=|!|<|>|[^\s(),!=<>]+)")


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m:
            raise _parse_error(text, f"unexpected character at position {pos}")
        out.append(m.group(1))
        pos = m.end()
    return out


def _parse_error(selector: str, why: str) -> errors.StatusError:
    return errors.bad_request(f"unable to parse requirement: {why}; found {selector!r}")


def _check_key(key: str, selector: str) -> None:
    problems = names.qualified_name(key)
    if problems:
        raise errors.bad_request(
            f"unable to parse requirement: values[0][{key}]: Invalid value: {key!r}: {problems[0]}"
        )


def _check_value(value: str, selector: str) -> None:
    problems = names.label_value(value)
    if problems:
        raise errors.bad_request(f"unable to parse requirement: values[0]: Invalid value: {value!r}: {problems[0]}")


def parse_label_selector(text: str | None) -> LabelSelector:
    """Parse `a=b,c!=d,e in (f,g),!h,i`; raise 400 BadRequest on bad syntax."""
    if not text or not text.strip():
        return LabelSelector()
    toks = _tokens(text)
    reqs: list[Requirement] = []
    i = 0

    def take() -> str:
        nonlocal i
        if i >= len(toks):
            raise _parse_error(text, "unexpected end of selector")
        tok = toks[i]
        i += 1
        return tok

    while i < len(toks):
        tok = take()
        if tok == "!":
            key = take()
            _check_key(key, text)
            reqs.append(Requirement(key, "!"))
        else:
            key = tok
            _check_key(key, text)
            nxt = toks[i] if i < len(toks) else ","
            if nxt == ",":
                reqs.append(Requirement(key, "exists"))
            elif nxt in ("=", "==", "!="):
                i += 1
                value = "" if i >= len(toks) or toks[i] == "," else take()
                _check_value(value, text)
                reqs.append(Requirement(key, nxt, (value,)))
            elif nxt in ("<", ">"):
                i += 1
                value = take()
                try:
                    int(value)
                except ValueError:
                    msg = f"for 'Gt', 'Lt' operators, the value must be an integer: {value!r}"
                    raise _parse_error(text, msg) from None
                reqs.append(Requirement(key, "gt" if nxt == ">" else "lt", (value,)))
            elif nxt in ("in", "notin"):
                i += 1
                if take() != "(":
                    raise _parse_error(text, "found '(' expected after 'in'/'notin'")
                values: list[str] = []
                while True:
                    v = take()
                    if v == ")":
                        break
                    if v == ",":
                        continue
                    _check_value(v, text)
                    values.append(v)
                if not values:
                    raise _parse_error(text, "for 'in', 'notin' operators, values set can't be empty")
                reqs.append(Requirement(key, nxt, tuple(values)))
            else:
                raise _parse_error(text, f"found {nxt!r}, expected: in, notin, =, ==, !=, gt, lt")
        if i < len(toks):
            if toks[i] != ",":
                raise _parse_error(text, f"found {toks[i]!r}, expected: ','")
            i += 1
    return LabelSelector(tuple(reqs))


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    op: str  # "=" or "!="
    value: str


@dataclass(frozen=True)
class FieldSelector:
    requirements: tuple[FieldRequirement, ...] = ()

    def matches(self, fields: Mapping[str, str]) -> bool:
        for r in self.requirements:
            have = fields.get(r.field, "")
            if (have == r.value) != (r.op == "="):
                return False
        return True

    def empty(self) -> bool:
        return not self.requirements

    def fields(self) -> set[str]:
        return {r.field for r in self.requirements}

    def exact(self, name: str) -> str | None:
        for r in self.requirements:
            if r.field == name and r.op == "=":
                return r.value
        return None


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts, cur, esc = [], [], False
    for ch in text:
        if esc:
            cur.append("\\" + ch)
            esc = False
        elif ch == "\\":
            esc = True
        elif ch == sep:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def parse_field_selector(text: str | None) -> FieldSelector:
    """Parse `metadata.name=x,status.phase!=Failed`; raise 400 BadRequest on bad syntax."""
    if not text or not text.strip():
        return FieldSelector()
    reqs: list[FieldRequirement] = []
    for part in _split_unescaped(text, ","):
        if not part:
            continue
        m = re.match(r"^((?:[^=!\\]|\\.)*)(!=|==|=)(.*)$", part)
        if not m or not m.group(1):
            raise errors.bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        op = "!=" if m.group(2) == "!=" else "="
        reqs.append(FieldRequirement(_unescape(m.group(1).strip()), op, _unescape(m.group(3).strip())))
    return FieldSelector(tuple(reqs))
