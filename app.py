"""Segment Explorer: build contact segments step by step and watch them change (`streamlit run app.py`).

The pages live in pages/ and are listed in ui/frame.py:navigation_pages(); ui/frame.py:render_app() draws the
frame they share (layout, logo, first-start demo data, menu, the open segment in the sidebar).
"""

from __future__ import annotations

from ui import frame

frame.render_app()
