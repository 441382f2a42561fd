"""Directive parsing (positions, block/inline, code excluded) and validation
(types, ranges, defaults, did-you-mean), independent of any figure work."""
from __future__ import annotations

import pytest

from generator.site.directives import (SPECS, Directive, DirectiveError, Pos, find_directives,
                                       parse_unit, spec_table_markdown, validate)

TEXT = """Intro line.

<< hierarchy fc6_1068 depth=3 children=4 path=conv5_243,conv4_371 caption="A \\"cat\\" tree" >>

Inline << unit layer4.1:17 size=60% >> text, `<< unit conv1_1 >>` code,
\\<< unit conv1_2 >> escaped, <!-- << unit conv1_3 >> --> commented.

```
<< units conv1_4 conv1_5 >>
```

~~~~
<< unit conv1_6 >>
~~~~
  << units conv1_4 conv1_65 >>
"""


def test_positions_kinds_and_raw_values():
    found = find_directives(TEXT, "post.md", line_offset=10)
    assert [(d.name, d.pos, d.block) for d in found] == [
        ("hierarchy", Pos("post.md", 13, 1), True),
        ("unit", Pos("post.md", 15, 8), False),
        ("units", Pos("post.md", 25, 3), True),
    ]
    h = found[0]
    assert h.args == ("fc6_1068",)
    assert h.kwargs == (("depth", "3"), ("children", "4"), ("path", "conv5_243,conv4_371"),
                        ("caption", 'A "cat" tree'))
    assert h.get("caption") == 'A "cat" tree' and h.get("nope", "d") == "d"
    assert h.raw.startswith("<< hierarchy") and h.raw.endswith(">>")
    assert str(found[1].pos) == "post.md:15:8"


def test_validate_types_defaults_and_sorted_keys():
    h, u, us = find_directives(TEXT, "post.md")
    p = validate(h)
    assert list(p) == sorted(p)
    assert p["root"] == "fc6_1068" and p["depth"] == 3 and p["children"] == 4
    assert p["path"] == ["conv5_243", "conv4_371"] and p["rule"] == "guided"
    assert p["explore"] == 0 and p["patches"] == 0 and p["image"] is None
    assert validate(u)["unit"] == "layer4.1:17" and validate(u)["size"] == "60%"
    assert validate(us)["units"] == ["conv1_4", "conv1_65"]
    assert validate(find_directives("<< predictions >>", "p")[0]) == {
        "caption": None, "id": None, "image": None, "k": 5, "model": None, "size": None}
    assert validate(find_directives("<< patches conv2_69 >>", "p")[0])["k"] == 16


@pytest.mark.parametrize("src,col,fragment", [
    ("<< hierachy fc6_1 >>", 1, "unknown directive 'hierachy' (did you mean 'hierarchy'?)"),
    ("<< hierarchy fc6_1 chidren=3 >>", 20, "no key 'chidren' (did you mean 'children'?)"),
    ("<< hierarchy fc6_1 depth=9 >>", 20, "depth=9 is out of range; valid: 0..8"),
    ("<< hierarchy fc6_1 children=0 >>", 20, "valid: 1..16"),
    ("<< hierarchy fc6_1 depth=two >>", 20, "depth must be an integer in 0..8"),
    ("<< hierarchy fc6_1 depth=1 path=conv5_1,conv4_2 >>", 28, "path has 2 units but depth is 1"),
    ("<< hierarchy fc6_1 path=conv5_1,,x >>", 20, "comma list without empty items"),
    ("<< hierarchy fc6_1 path=conv5 >>", 20, "'conv5' in path is not a unit reference"),
    ("<< unit conv1 >>", 9, "'conv1' is not a unit reference"),
    ("<< unit conv1_1 rule=guidd >>", 17, "did you mean 'guided'?"),
    ("<< unit conv1_1 size=huge >>", 17, "small | medium | large | full"),
    ("<< unit conv1_1 norm=a:b:c >>", 17, "NAME or NAME:PARAM"),
    ("<< unit conv1_1 conv1_2 >>", 17, "'unit' takes one unit reference, got 2"),
    ("<< unit conv1_1 caption=a caption=b >>", 27, "'caption' given twice"),
    ("<< predictions conv1_1 >>", 16, "no positional arguments"),
    ("<< featuremaps conv1:3 >>", 16, "not a layer name"),
    ("<< maxacts conv1_7 >>", 1, "needs images="),
    ("<< units >>", 1, "'units' takes 1 to 16 unit references, got 0"),
])
def test_errors_name_position_and_what_is_valid(src, col, fragment):
    with pytest.raises(DirectiveError) as e:
        for d in find_directives("x\n" + src, "p.md"):
            validate(d)
    assert e.value.pos == Pos("p.md", 2, col)
    assert str(e.value).startswith(f"p.md:2:{col}: ")
    assert fragment in str(e.value)


def test_unterminated_known_directive_is_an_error_but_prose_is_not():
    with pytest.raises(DirectiveError, match=r"p:1:13: unterminated directive '<< unit': unclosed"):
        find_directives('<< unit a_1 cap="oops >>', "p")
    with pytest.raises(DirectiveError, match="missing '>>'"):
        find_directives("<< hierarchy fc6_1 depth=2\n>>", "p")
    assert find_directives("shift x << 2 and y <<z", "p") == []


def test_units_parse_both_separators():
    assert parse_unit("fc6_1068") == ("fc6", 1068)
    assert parse_unit("my_layer_12") == ("my_layer", 12)
    assert parse_unit("layer4.1:17") == ("layer4.1", 17)
    with pytest.raises(ValueError):
        parse_unit("conv5")


def test_spec_table_covers_every_directive():
    table = spec_table_markdown()
    for name, spec in SPECS.items():
        assert f"`{spec.example}`" in table
    assert {"unit", "units", "hierarchy", "predictions", "featuremaps", "maxacts", "patches",
            "optimize", "dream"} == set(SPECS)
    assert isinstance(find_directives("<< unit a_1 >>", "p")[0], Directive)


def test_readme_directive_table_is_the_generated_one():
    """The README's table is `spec_table_markdown()` verbatim, so it cannot drift from
    the kinds; no cell holds a bare `|` that would split it."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    table = spec_table_markdown()
    assert table in readme
    for row in table.splitlines()[2:]:
        assert row.count("|") == 4, row
