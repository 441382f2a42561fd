/* featuretree explorer: walk a hierarchy figure's precomputed tree in the page.
 *
 * A hierarchy built with `explore=N` has a `data-explore` URL on its `.ft-tree`: a JSON
 * file of every node down to N levels past the figure (see
 * generator/site/figures/explore.py). Until a reader activates a unit the figure stays
 * exactly as built; this script only makes its tiles focusable. Activating a tile (click,
 * Enter or Space) fetches the data once and redraws the tree along the chosen path, with
 * rows, lines and weights laid out as the build lays out the static figure. A breadcrumb
 * shows the path and goes back up; the URL fragment (#fig-ROOT=ROOT-CHILD-...) records
 * it, so a link reopens the same path. No dependencies, nothing fetched from elsewhere.
 */
(function () {
  "use strict";

  var SVG = "http://www.w3.org/2000/svg";
  var figures = [];

  /* A short number, as the figure templates print it (Python's .3g / .2e). */
  function num(v) {
    v = Number(v);
    if (v === 0) return "0";
    var a = Math.abs(v), s;
    if (a >= 1e-3 && a < 1e4) {
      s = v.toPrecision(3);
      if (s.indexOf("e") < 0) return String(Number(s));
      s = s.replace(/\.?0+e/, "e");
    } else {
      s = v.toExponential(2);
    }
    return s.replace(/e([+-])(\d)$/, function (m, sign, d) { return "e" + sign + "0" + d; });
  }

  function pct(v) { return (Math.round(v * 10000) / 10000) + "%"; }

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs) if (attrs[k] !== null && attrs[k] !== undefined) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function svgEl(tag, attrs) {
    var e = document.createElementNS(SVG, tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  }

  /* ---------------------------------------------------------------- data */

  function load(f) {
    if (!f.loading) {
      f.loading = fetch(f.url, { credentials: "same-origin" })
        .then(function (r) {
          if (!r.ok) throw new Error(r.status + " " + r.statusText);
          return r.json();
        })
        .then(function (doc) {
          f.doc = doc;
          f.nodes = {};
          doc.nodes.forEach(function (n) { f.nodes[n.path] = n; });
          return f;
        });
      f.loading.catch(function (err) {
        f.loading = null;
        say(f, "The explorer could not load its data (" + err.message + ").");
      });
    }
    return f.loading;
  }

  /* The longest valid prefix of a path (unit names) through the precomputed tree. */
  function validPath(f, units) {
    var root = f.doc.nodes[0], out = [root.path];
    for (var i = 1; i < units.length; i++) {
      var next = out[out.length - 1] + "-" + units[i];
      if (!f.nodes[next] || f.nodes[out[out.length - 1]].children.indexOf(next) < 0) break;
      out.push(next);
    }
    return out;
  }

  /* ---------------------------------------------------------------- layout (as layout.py) */

  function layout(f, path) {
    var L = f.doc.layout, tw = L.tile, th = L.tile * (f.doc.tile_h / Math.max(f.doc.tile_w, 1));
    var rowH = L.label + th, rows = [[{ node: f.nodes[path[0]], parent: null }]];
    path.forEach(function (p) {
      var n = f.nodes[p];
      if (n.children.length) {
        rows.push(n.children.map(function (c) { return { node: f.nodes[c], parent: n }; }));
      }
    });
    var cols = Math.max.apply(null, rows.map(function (r) { return r.length; }));
    var W = cols * tw + (cols - 1) * L.gap, H = rows.length * rowH + (rows.length - 1) * L.row_gap;
    var at = {}, placed = [];
    rows.forEach(function (row, r) {
      var x0 = (W - (row.length * tw + (row.length - 1) * L.gap)) / 2;
      row.forEach(function (item, i) {
        var p = { node: item.node, parent: item.parent, x: x0 + i * (tw + L.gap), y: r * (rowH + L.row_gap) };
        at[item.node.path] = p;
        placed.push(p);
      });
    });
    var edges = [];
    path.forEach(function (pp) {
      var parent = at[pp], kids = parent.node.children.map(function (c) { return at[c]; });
      if (!kids.length) return;
      var top = Math.max.apply(null, kids.map(function (k) { return Math.abs(k.node.weight || 0); })) || 1;
      kids.forEach(function (k) {
        var w = k.node.weight || 0;
        edges.push({ parent: parent.node, child: k.node, x1: parent.x + tw / 2, y1: parent.y + rowH,
                     x2: k.x + tw / 2, y2: k.y, weight: w, strength: Math.max(Math.abs(w) / top, 0.05) });
      });
    });
    return { W: W, H: H, tw: tw, rowH: rowH, cols: cols, nodes: placed, edges: edges, label: L.label };
  }

  /* ---------------------------------------------------------------- drawing */

  function describe(f, n, parent) {
    return n.unit + ": unit " + n.index + " of layer " + n.layer +
      (parent ? ", edge weight " + num(n.weight) + " from " + parent.unit : ", activation " + num(n.activation));
  }

  function stopText(f, n) {
    if (n.children.length) return "";
    if (n.stop === "bottom") return n.unit + " is in the lowest layer: nothing lies below it.";
    if (n.stop === "budget") return n.unit + ": its children were not precomputed (the figure's budget of " +
      f.doc.budget + " tiles was spent on stronger edges).";
    return n.unit + ": its children were not precomputed (this figure explores " +
      f.doc.depth + " levels below " + f.doc.root + ").";
  }

  function draw(f, path) {
    var lay = layout(f, path), onPath = {};
    path.forEach(function (p) { onPath[p] = true; });
    var tree = f.tree, box = "0 0 " + lay.W.toFixed(2) + " " + lay.H.toFixed(2);
    tree.style.aspectRatio = lay.W.toFixed(2) + " / " + lay.H.toFixed(2);
    tree.style.setProperty("--ft-cols", lay.cols);
    tree.style.setProperty("--ft-label", (100 * lay.label * 0.62 / lay.W).toFixed(3) + "cqw");
    var svg = svgEl("svg", { "class": "ft-lines", viewBox: box, preserveAspectRatio: "none", role: "img",
                             "aria-label": "Edges from each unit to the units below it" });
    lay.edges.forEach(function (e) {
      var g = svgEl("g", { "class": "ft-edge", "data-parent": e.parent.unit, "data-child": e.child.unit,
                           "data-weight": e.weight });
      var t = svgEl("title", {});
      t.textContent = e.parent.unit + " \u2192 " + e.child.unit + ": edge weight " + num(e.weight);
      g.appendChild(t);
      var ends = { x1: e.x1.toFixed(2), y1: e.y1.toFixed(2), x2: e.x2.toFixed(2), y2: e.y2.toFixed(2) };
      g.appendChild(svgEl("line", Object.assign({ "class": "ft-edge-hit" }, ends)));
      g.appendChild(svgEl("line", Object.assign({ "class": "ft-edge-line",
        style: "stroke-width: " + (1 + 3 * e.strength).toFixed(2) + "px" }, ends)));
      svg.appendChild(g);
    });
    var frag = document.createDocumentFragment();
    frag.appendChild(svg);
    lay.nodes.forEach(function (p) {
      var n = p.node, open = onPath[n.path] && n.children.length > 0;
      var d = el("div", {
        "class": "ft-node" + (open ? " ft-followed" : "") + (n.children.length ? "" : " ft-closed"),
        style: "left: " + pct(100 * p.x / lay.W) + "; top: " + pct(100 * p.y / lay.H) + "; width: " +
          pct(100 * lay.tw / lay.W) + "; height: " + pct(100 * lay.rowH / lay.H),
        "data-unit": n.unit, "data-path": n.path,
        "data-weight": n.weight === null ? null : n.weight
      });
      var head = el("div", { "class": "ft-head", style: "width: 100%" });
      var label = el("span", { "class": "ft-label" }), href = atlasHref(f, n.unit);
      if (href) label.appendChild(el("a", { "class": "ft-atlas", href: href }, n.unit));
      else label.textContent = n.unit;
      head.appendChild(label);
      var desc = describe(f, n, p.parent);
      head.appendChild(el("img", { src: n.tile, alt: desc, title: desc + (n.children.length ? "" : " \u2014 " +
        (n.stop === "bottom" ? "lowest layer" : "not precomputed")), width: f.doc.tile_w,
        height: f.doc.tile_h, decoding: "async" }));
      d.appendChild(head);
      frag.appendChild(d);
    });
    tree.replaceChildren(frag);
    f.path = path;
    decorate(f);
    crumbs(f);
    var last = f.nodes[path[path.length - 1]];
    say(f, last.children.length ? "Showing what " + last.unit + " is made of. Select a unit to go deeper."
      : stopText(f, last));
  }

  /* A unit's atlas page, when the site has an atlas of this figure's model holding it. */
  function atlasHref(f, unit) {
    if (!f.atlas) return null;
    var cut = unit.lastIndexOf("_"), layer = unit.slice(0, cut), index = +unit.slice(cut + 1);
    return f.atlas.units[layer] > index ? f.atlas.base + layer + "/" + index + "/" : null;
  }

  function atlasOf(tree) {
    var base = tree.getAttribute("data-atlas"), units = {};
    if (!base) return null;
    (tree.getAttribute("data-atlas-units") || "").split(" ").forEach(function (pair) {
      var kv = pair.split(":");
      if (kv.length === 2) units[kv[0]] = +kv[1];
    });
    return { base: base, units: units };
  }

  /* Tiles become buttons: focusable, labelled, with their expanded state. */
  function decorate(f) {
    var open = {};
    (f.path || []).forEach(function (p) { open[p] = true; });
    f.tree.querySelectorAll(".ft-node").forEach(function (d) {
      var p = d.getAttribute("data-path"), expanded;
      if (f.path) expanded = !!open[p] && !d.classList.contains("ft-closed");
      else expanded = d.classList.contains("ft-followed");
      d.setAttribute("role", "button");
      d.setAttribute("tabindex", "0");
      d.setAttribute("aria-expanded", expanded ? "true" : "false");
      var img = d.querySelector("img");
      d.setAttribute("aria-label", (img ? img.getAttribute("alt") : d.getAttribute("data-unit")) +
        (expanded ? " (expanded)" : ""));
    });
  }

  function crumbs(f) {
    var ol = el("ol");
    f.path.forEach(function (p, i) {
      var li = el("li"), last = i === f.path.length - 1;
      var b = el("button", { type: "button", "data-path": p, "aria-current": last ? "location" : null },
                 f.nodes[p].unit);
      b.addEventListener("click", function () { go(f, f.path.slice(0, i + 1)); });
      li.appendChild(b);
      ol.appendChild(li);
    });
    f.crumbs.replaceChildren(ol);
    f.crumbs.hidden = false;
  }

  function say(f, text) { f.status.textContent = text; }

  /* ---------------------------------------------------------------- state and URL */

  function go(f, path, focusPath) {
    draw(f, path);
    writeHash();
    var target = focusPath && f.tree.querySelector('.ft-node[data-path="' + cssEscape(focusPath) + '"]');
    if (target) target.focus({ preventScroll: true });
  }

  function cssEscape(s) { return window.CSS && CSS.escape ? CSS.escape(s) : s.replace(/["\\]/g, "\\$&"); }

  function activate(f, nodePath) {
    load(f).then(function () {
      if (!f.nodes[nodePath]) return;
      var current = f.path || staticPath(f), units = nodePath.split("-");
      var path = validPath(f, units), last = current[current.length - 1];
      if (nodePath === last && path.length > 1 && f.nodes[nodePath].children.length) path = path.slice(0, -1);
      go(f, path, nodePath);
    });
  }

  /* The path the built figure follows: its deepest expanded node. */
  function staticPath(f) {
    var best = f.tree.getAttribute("data-root");
    f.tree.querySelectorAll(".ft-node.ft-followed").forEach(function (d) {
      var p = d.getAttribute("data-path");
      if (p.split("-").length > best.split("-").length) best = p;
    });
    return validPath(f, best.split("-"));
  }

  function writeHash() {
    var parts = [];
    figures.forEach(function (f) {
      if (f.path) parts.push(f.id + "=" + f.path[f.path.length - 1]);
    });
    var hash = parts.length ? "#" + parts.join("&") : "";
    if (location.hash !== hash) history.replaceState(null, "", location.pathname + location.search + hash);
  }

  function readHash() {
    var want = {};
    location.hash.replace(/^#/, "").split("&").forEach(function (part) {
      var i = part.indexOf("=");
      if (i > 0) want[decodeURIComponent(part.slice(0, i))] = decodeURIComponent(part.slice(i + 1));
    });
    figures.forEach(function (f) {
      var p = want[f.id];
      if (!p) return;
      load(f).then(function () {
        draw(f, validPath(f, p.split("-")));
        if (!readHash.scrolled) { readHash.scrolled = true; f.fig.scrollIntoView({ block: "start" }); }
      });
    });
  }

  /* ---------------------------------------------------------------- set-up */

  function setup(tree, seen) {
    var fig = tree.closest("figure") || tree.parentNode;
    var base = "fig-" + tree.getAttribute("data-root"), id = base, n = 2;
    while (seen[id]) id = base + "-" + n++;
    seen[id] = true;
    var f = { fig: fig, tree: tree, id: id, url: tree.getAttribute("data-explore"), path: null,
              atlas: atlasOf(tree) };
    f.crumbs = el("nav", { "class": "ft-crumbs", "aria-label": "Path through this hierarchy" });
    f.crumbs.hidden = true;
    f.status = el("p", { "class": "ft-explore-status", role: "status", "aria-live": "polite" },
                  "Select a unit to see the units below it.");
    tree.parentNode.insertBefore(f.crumbs, tree);
    tree.parentNode.insertBefore(f.status, tree.nextSibling);
    fig.classList.add("ft-explorable");
    decorate(f);
    function nodeOf(e) {
      var d = e.target.closest && e.target.closest(".ft-node");
      return d && tree.contains(d) ? d : null;
    }
    tree.addEventListener("click", function (e) {
      if (e.target.closest && e.target.closest("a[href]")) return;   // a unit's atlas page
      var d = nodeOf(e);
      if (d) activate(f, d.getAttribute("data-path"));
    });
    tree.addEventListener("keydown", function (e) {
      var d = nodeOf(e);
      if (!d || e.target !== d || (e.key !== "Enter" && e.key !== " ")) return;
      e.preventDefault();
      activate(f, d.getAttribute("data-path"));
    });
    /* fetch ahead when a reader comes near, so the first activation feels immediate */
    ["pointerenter", "focusin"].forEach(function (type) {
      fig.addEventListener(type, function () { load(f); }, { once: true });
    });
    return f;
  }

  function init() {
    var seen = {};
    document.querySelectorAll("figure.ft-hierarchy .ft-tree[data-explore]").forEach(function (tree) {
      figures.push(setup(tree, seen));
    });
    if (!figures.length) return;
    readHash();
    window.addEventListener("hashchange", readHash);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
