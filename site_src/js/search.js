/* The search page: the build's search.json indexed by MiniSearch in the page (no request
   leaves the site). Results update as you type; ?q= in the address is the query. */
(function () {
  "use strict";
  var form = document.querySelector(".search-form");
  if (!form) return;
  var input = form.querySelector("input[type=search]");
  var status = document.querySelector(".search-status");
  var list = document.querySelector(".search-results");
  var engine = null;
  var docs = [];

  function say(text) { status.textContent = text; }

  function snippet(text, terms) {
    var lower = text.toLowerCase(), at = -1;
    for (var i = 0; i < terms.length && at < 0; i++) at = lower.indexOf(terms[i].toLowerCase());
    var start = Math.max(0, at - 80), end = Math.min(text.length, start + 220);
    if (start > 0) start = text.indexOf(" ", start) + 1;  // whole words only
    if (end < text.length) end = Math.max(text.lastIndexOf(" ", end), start);
    return (start > 0 ? "… " : "") + text.slice(start, end) + (end < text.length ? " …" : "");
  }

  function render(query) {
    list.textContent = "";
    if (!engine) return;
    if (!query.trim()) { say(docs.length + " posts indexed."); return; }
    var hits = engine.search(query, { prefix: true, fuzzy: 0.2, boost: { title: 3, tags: 2, description: 1.5 } });
    say(hits.length ? hits.length + (hits.length === 1 ? " post" : " posts") + " found." : "No post matches “" + query + "”.");
    hits.slice(0, 50).forEach(function (hit) {
      var doc = docs[hit.id];
      var li = document.createElement("li");
      var a = document.createElement("a");
      a.className = "post-link"; a.href = doc.url; a.textContent = doc.title;
      var time = document.createElement("time");
      time.dateTime = doc.date; time.textContent = doc.date;
      var p = document.createElement("p");
      p.className = "post-description"; p.textContent = snippet(doc.text || doc.description, hit.terms);
      li.append(time, a, p);
      list.appendChild(li);
    });
  }

  function start(data) {
    docs = data.documents;
    engine = new MiniSearch({ fields: ["title", "tags", "description", "text"], storeFields: [] });
    engine.addAll(docs);
    render(input.value);
  }

  var q = new URLSearchParams(location.search).get("q");
  if (q) input.value = q;
  form.addEventListener("submit", function (e) { e.preventDefault(); render(input.value); });
  input.addEventListener("input", function () {
    var url = new URL(location.href);
    if (input.value) url.searchParams.set("q", input.value); else url.searchParams.delete("q");
    history.replaceState(null, "", url);
    render(input.value);
  });
  if (typeof MiniSearch === "undefined") { say("Search is not available: the MiniSearch script is missing (run `make minisearch`)."); return; }
  say("Loading the index…");
  fetch(form.dataset.index).then(function (r) {
    if (!r.ok) throw new Error(r.status);
    return r.json();
  }).then(start, function () { say("The search index could not be loaded."); });
})();
