"""Where an element sits on an AppTest page: to tell a message shown by its control from one at the top."""

from __future__ import annotations

from typing import Any

from streamlit.testing.v1 import AppTest


def path_of(at: AppTest, wanted: Any) -> list[int]:
    """The element's position in the page tree (indices from the root)."""

    def walk(node: Any, path: list[int]) -> list[int] | None:
        if node is wanted:
            return path
        for i, child in getattr(node, "children", {}).items():
            found = walk(child, [*path, i])
            if found is not None:
                return found
        return None

    found = walk(at._tree, [])
    assert found is not None, "element not on the page"
    return found


def assert_right_after(at: AppTest, element: Any, control: Any) -> None:
    """The element comes right after the control, or right after the row of buttons the control sits in."""
    p, q = path_of(at, control), path_of(at, element)
    assert q in (p[:-1] + [p[-1] + 1], p[:-2] + [p[-2] + 1]), (q, p)
