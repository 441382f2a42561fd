"""Hostile or odd post input: one-line BuildErrors with file:line:col, never a hang or traceback."""
from __future__ import annotations

import pytest

from generator.site.directives import find_directives
from generator.site.errors import BuildError
from generator.site.posts import load_post

BOMB = "\n".join(
    ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    + [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]" for i in range(8)])


def post(tmp_path, front: str, name: str = "p.md", body: str = "Text.\n", prefix: bytes = b""):
    path = tmp_path / name
    path.write_bytes(prefix + f"---\ntitle: T\n{front}\n---\n{body}".encode())
    return path


def test_yaml_alias_bomb_is_refused(tmp_path):
    path = post(tmp_path, "date: 2024-05-01\n" + BOMB)
    with pytest.raises(BuildError) as e:
        load_post(path, None)
    assert "alias or anchor" in str(e.value)
    assert e.value.pos.line == 4 and e.value.pos.col == 4


@pytest.mark.parametrize("value", ["2024-13-45", "2024-02-30", "2024-01-01 25:61:00", '"2024-02-30"'])
def test_invalid_front_matter_date(tmp_path, value):
    path = post(tmp_path, f"date: {value}")
    with pytest.raises(BuildError) as e:
        load_post(path, None)
    assert "is not a date" in e.value.message
    assert e.value.pos.line == 3 and e.value.pos.path.endswith("p.md")


def test_invalid_file_name_date(tmp_path):
    path = post(tmp_path, "tags: [a]", name="2024-13-45-title.md")
    with pytest.raises(BuildError) as e:
        load_post(path, None)
    assert "2024-13-45" in e.value.message and "is not a date" in e.value.message
    assert str(e.value).split(":")[0].endswith("2024-13-45-title.md")


def test_utf8_bom_is_accepted(tmp_path):
    path = post(tmp_path, "date: 2024-05-01", prefix=b"\xef\xbb\xbf")
    p = load_post(path, None)
    assert p.title == "T" and p.date.year == 2024


def test_directives_in_indented_code_stay_text():
    body = ("Prose.\n\n    << unit conv1_4 >>\n    more code\n\nAfter << unit real >>.\n\n"
            "Text[^1].\n\n[^1]: A note\n    << unit note_one >> continues the note.\n\n"
            "- item\n\n    << unit item_two >> continues the item.\n")
    found = [d.args[0] for d in find_directives(body, "p.md")]
    assert found == ["real", "note_one", "item_two"]
