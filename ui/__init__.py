"""Streamlit helpers shared by the pages: state, formatting, charts and the filter builder.

Thin on purpose: every rule lives in segcore; this package only renders and calls.
"""
