"""Planning: defaults, path checks and cache keys, all without torch."""
from dataclasses import dataclass
from pathlib import Path

import pytest

from generator.site.errors import BuildError, Pos
from generator.site.figures import FigureStage
from generator.site.directives import DirectiveError, find_directives, validate
from test_figures_support import FakeDirective, values


@dataclass
class Site:
    site_dir: Path
    base_url: str = "/"
    model: str | None = None
    image: str | None = None


@pytest.fixture
def site(tmp_path):
    root = tmp_path / "site"
    (root / "posts").mkdir(parents=True)
    (root / "images").mkdir()
    (root / "images" / "boot.png").write_bytes(b"png-bytes-1")
    (root / "posts" / "local.png").write_bytes(b"png-bytes-2")
    (root / "net.py").write_text("def build(): ...\n")
    (root / "w.safetensors").write_bytes(b"weights-1")
    (tmp_path / "outside.png").write_bytes(b"x")
    return Site(site_dir=root, model="net.py:build", image="boot.png")


def _meta(site, **kw):
    return {"source": site.site_dir / "posts" / "a.md", "post_dir": site.site_dir / "posts", **kw}


def _key(stage, name="unit", args=("conv1_4",), params=None, meta=None, site=None):
    d = FakeDirective(name=name, args=list(args), pos=Pos("posts/a.md", len(stage._plans) + 1, 1))
    stage.plan(d, values(name, args, **(params or {})), meta)
    return stage._plans[d.pos]


def test_defaults_and_key_inputs(site, tmp_path):
    stage = FigureStage(site, tmp_path / "cache", quiet=True)
    meta = _meta(site, weights="../w.safetensors")
    base = _key(stage, params={"rule": "guided"}, meta=meta)
    assert base.request.images == [str(site.site_dir / "images" / "boot.png")]
    assert base.request.model == f"{site.site_dir / 'net.py'}:build"
    assert base.request.weights == str(site.site_dir / "w.safetensors")
    # presentation does not change the key; computation does
    assert _key(stage, params={"rule": "guided", "caption": "hi", "size": 300}, meta=meta).key == base.key
    assert _key(stage, params={"rule": "deconv"}, meta=meta).key != base.key
    assert _key(stage, args=("conv1_5",), meta=meta).key != base.key
    local = _key(stage, params={"image": "local.png"}, meta=meta)
    assert local.request.images == [str(site.site_dir / "posts" / "local.png")] and local.key != base.key
    assert {Path(p) for p in stage.watch_paths()} >= {
        site.site_dir / "w.safetensors", site.site_dir / "net.py", site.site_dir / "images" / "boot.png"}


def test_front_matter_dir_does_not_move_image_lookup(site, tmp_path):
    """Images are looked up beside the post's real file, whatever a `dir:` key says."""
    stage = FigureStage(site, tmp_path / "cache", quiet=True)
    (site.site_dir / "elsewhere").mkdir()
    (site.site_dir / "elsewhere" / "local.png").write_bytes(b"decoy")
    plan = _key(stage, params={"image": "local.png"},
                meta=_meta(site, dir=site.site_dir / "elsewhere"))
    assert plan.request.images == [str(site.site_dir / "posts" / "local.png")]


def test_key_follows_file_bytes(site, tmp_path):
    meta = _meta(site, weights="../w.safetensors")
    first = _key(FigureStage(site, tmp_path / "c", quiet=True), meta=meta).key
    again = _key(FigureStage(site, tmp_path / "c", quiet=True), meta=meta).key
    assert again == first
    (site.site_dir / "w.safetensors").write_bytes(b"weights-2-longer")
    swapped = _key(FigureStage(site, tmp_path / "c", quiet=True), meta=meta).key
    assert swapped != first
    (site.site_dir / "images" / "boot.png").write_bytes(b"another image!")
    assert _key(FigureStage(site, tmp_path / "c", quiet=True), meta=meta).key not in (first, swapped)


@pytest.mark.parametrize("params, message", [
    ({"image": "../../outside.png"}, "outside the site directory"),
    ({"image": "missing.png"}, "not found"),
    ({"size": "huge"}, "size="),
])
def test_bad_input_names_the_directive(site, tmp_path, params, message):
    stage = FigureStage(site, tmp_path / "cache", quiet=True)
    d = FakeDirective(name="unit", args=["conv1_4"], pos=Pos("posts/a.md", 7, 3))
    with pytest.raises(BuildError) as err:
        stage.plan(d, values("unit", ["conv1_4"], **params), _meta(site))
    assert str(err.value).startswith("posts/a.md:7:3: ") and message in str(err.value)


def test_hierarchy_needs_one_root():
    """The kind's argument count is checked once, where the directive is validated."""
    d = find_directives("<< hierarchy fc6_1 fc6_2 >>", "p.md")[0]
    with pytest.raises(DirectiveError, match="'hierarchy' takes one unit reference, got 2"):
        validate(d)
