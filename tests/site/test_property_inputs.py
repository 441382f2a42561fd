"""Issue 13: property-based hostile input. Hypothesis writes directives, front matter and
site.toml values; every build either succeeds or fails with one line (a BuildError, or an
OSError the CLI prints as one line), never a traceback, and a failed build leaves the
previous site byte for byte as it was. Builds run in process (generator.site API) with a
stand-in figures stage, so the whole file stays well under a minute."""
from __future__ import annotations

import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generator.site.directives import SPECS
from generator.site.errors import BuildError
from generator.site.pipeline import build
from site_helpers import FakeStage

EXAMPLES = 60
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])
COUNTS = {"inputs": 0, "built": 0, "refused": 0, "tracebacks": 0, "sites_lost": 0}

POST = "---\ntitle: Hello\ndate: 2024-05-01\n---\n\nFirst words.\n"
ODD = "<>\"'=,:;#&*!|%@`{}[]$\\\t\n ‹›«»ü€\u200b\u0000"
TEXT = st.text(alphabet=string.ascii_letters + string.digits + ODD, max_size=40)


def tree(root: Path) -> dict[str, bytes]:
    if not root.is_dir():
        return {}
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("prop") / "site"
    (root / "posts").mkdir(parents=True)
    (root / "site.toml").write_text('title = "Prop"\n')
    (root / "posts" / "2024-05-01-hello.md").write_text(POST)
    build(root, quiet=True, stage_factory=FakeStage)
    return root


def attempt(site: Path, files: dict[str, str | bytes]) -> None:
    """Write `files` (site-relative), build, check the outcome, restore the files."""
    COUNTS["inputs"] += 1
    before = tree(site / "_site")
    saved = {rel: (site / rel).read_bytes() if (site / rel).exists() else None for rel in files}
    for rel, data in files.items():
        (site / rel).write_bytes(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data)
    try:
        build(site, quiet=True, stage_factory=FakeStage)
        COUNTS["built"] += 1
    except (BuildError, OSError) as e:
        COUNTS["refused"] += 1
        assert "\n" not in str(e), repr(str(e))
        if tree(site / "_site") != before:
            COUNTS["sites_lost"] += 1
            raise AssertionError(f"a failed build changed the site: {e}")
    except Exception:
        COUNTS["tracebacks"] += 1
        raise
    finally:
        for rel, data in saved.items():
            if data is None:
                (site / rel).unlink(missing_ok=True)
            else:
                (site / rel).write_bytes(data)


# ------------------------------------------------------------------ directives

VALUE = st.one_of(TEXT, st.sampled_from(["conv1_1", "fc6_1068", "layer4.1:17", "conv5", "0", "-1",
                                         "99999999999999999999", "1e309", "nan", "guided", "small",
                                         "a.png", "../../etc/passwd", "/etc/passwd", "percentile:200",
                                         "a,b,c", '"quoted value"', "'single'", "x" * 1200]))
KEY = st.one_of(st.sampled_from(sorted({k for s in SPECS.values() for k in s.keys})), TEXT)


@st.composite
def directive(draw) -> str:
    name = draw(st.one_of(st.sampled_from(sorted(SPECS)), st.sampled_from(["ünit", "unti", "x"]), TEXT))
    parts = draw(st.lists(st.one_of(VALUE, st.builds(lambda k, v: f"{k}={v}", KEY, VALUE)), max_size=6))
    opener = draw(st.sampled_from(["<<", "<< ", "<‹ ", "\\<<", "    <<", "`<<"]))
    closer = draw(st.sampled_from([">>", " >>", "", " >", "››"]))
    return f"{opener}{name} {' '.join(parts)}{closer}"


@SETTINGS
@given(body=st.lists(st.one_of(directive(), TEXT), min_size=1, max_size=4))
def test_generated_directives_give_one_line_or_success(site, body):
    text = POST.replace("First words.\n", "\n\n".join(body) + "\n")
    attempt(site, {"posts/2024-05-02-gen.md": text})


# ------------------------------------------------------------------ front matter

FM_KEY = st.one_of(st.sampled_from(["title", "date", "tags", "draft", "published", "slug",
                                    "description", "figures", "macros", "model", "image", "toc",
                                    "author", "categories", "layout", "bibliography"]), TEXT)
FM_VALUE = st.one_of(
    TEXT, st.integers(), st.booleans(),
    st.sampled_from(["2024-13-45", "2024-02-30", "2024-01-01 25:61:00", "2024-05-01", "[a, b]",
                     "{a: 1}", "&a [x]", "*a", "!!python/object:os.system", "- x\n- y",
                     "\"unterminated", "{depth: 99}", "{rule: nope}", "|\n  block", "~", "null"]))


@SETTINGS
@given(pairs=st.lists(st.tuples(FM_KEY, FM_VALUE), max_size=6), bom=st.booleans(),
       fence=st.sampled_from(["---", "---\n", "--- ", "+++"]))
def test_generated_front_matter_gives_one_line_or_success(site, pairs, bom, fence):
    lines = "\n".join(f"{k}: {v}" for k, v in pairs)
    text = ("\ufeff" if bom else "") + f"{fence}\ntitle: Gen\n{lines}\n---\n\nBody.\n"
    attempt(site, {"posts/2024-05-03-front.md": text})


# ------------------------------------------------------------------ site.toml

TOML_KEY = st.sampled_from(["title", "url", "base_url", "language", "feed_entries", "output",
                            "cache", "posts", "model", "image", "theme", "figures", "math",
                            "citation_style", "bibliography", "author", "titel"])
PLACES = st.sampled_from(["_site", "posts", ".", "..", "/", "/usr", "/etc", "static", "templates",
                          "images", "~", "~/.ssh", "_site/inner", ".cache", "", "posts/../_site"])
TOML_VALUE = st.one_of(
    TEXT.map(lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'),
    st.integers(min_value=-10**20, max_value=10**20).map(str), st.sampled_from(["true", "false"]),
    PLACES.map(lambda p: f'"{p}"'),
    st.sampled_from(["[1, 2]", "{ a = 1 }", "1979-05-27", "nan", "inf", '"""multi\nline"""',
                     "{ depth = 99 }", "{ rule = \"nope\" }", '{ "\\\\RR" = "\\\\mathbb{R" }', "'", "="]))


@SETTINGS
@given(pairs=st.lists(st.tuples(TOML_KEY, TOML_VALUE), max_size=4), table=st.booleans())
def test_generated_site_toml_gives_one_line_or_success(site, pairs, table):
    body = "\n".join(f"{k} = {v}" for k, v in pairs)
    if table:
        body = "[figures]\n" + body
    attempt(site, {"site.toml": 'title = "Prop"\n' + body + "\n"})


def test_report_counts(site):
    """Not a property: prints what the properties above did (for the issue's closing note)."""
    print(f"\nproperty inputs: {COUNTS}")
    assert COUNTS["tracebacks"] == 0 and COUNTS["sites_lost"] == 0
