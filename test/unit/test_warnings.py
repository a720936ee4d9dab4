"""Warning headers: whatever text a warning carries, the header is printable, quoted and bounded."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kubellm.apis.codec import MAX_WARNINGS
from kubellm.server.handlers import MAX_WARNING_LENGTH, warning_texts


@given(st.lists(st.text(max_size=3000), max_size=200))
def test_any_warnings_make_safe_bounded_headers(warnings: list[str]) -> None:
    texts = warning_texts(warnings)
    assert len(texts) == min(len(warnings), MAX_WARNINGS)
    for text in texts:
        assert all(" " <= c <= "~" for c in text) and len(text) <= MAX_WARNING_LENGTH
        unescaped = text.replace('\\\\', "")
        assert '"' not in unescaped.replace('\\"', ""), text  # every quote escaped


def test_the_last_warning_counts_the_rest() -> None:
    texts = warning_texts([f"w{i}" for i in range(40)])
    assert texts[-1] == "and 9 more warnings" and texts[0] == "w0"
    assert warning_texts(['a "b" c\\d']) == ['a \\"b\\" c\\\\d']
