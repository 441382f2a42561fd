"""Placeholder: the windowed chain backward lands here."""
from __future__ import annotations


def compile_chain(model):
    return None
