"""The page at ``GET /``: paste Arabic text, see displaCy's entity rendering right to left.

The page posts the text to ``/render`` and shows the HTML that displaCy made on the
server (which escapes the text), plus a table of the entities with their scores.
"""
from __future__ import annotations

import html

_PAGE = """<!DOCTYPE html>
<html lang="ar" dir="rtl">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>spacy-aner: Arabic named entities</title>
<style>
  body { font-family: system-ui, "Noto Sans Arabic", "DejaVu Sans", sans-serif; max-width: 60rem;
         margin: 2rem auto; padding: 0 1rem; color: #222; }
  textarea { width: 100%; min-height: 9rem; font: inherit; font-size: 1.15rem; box-sizing: border-box; }
  button { margin-top: .5rem; font: inherit; font-size: 1.05rem; padding: .3rem 1.2rem; }
  .note { direction: ltr; text-align: left; color: #555; font-size: .9rem; }
  #error { color: #b00020; min-height: 1.2em; }
  #result { font-size: 1.2rem; }
  table { border-collapse: collapse; margin-top: 1rem; }
  th, td { padding: .25rem .7rem; border-bottom: 1px solid #ddd; text-align: right; }
</style>
</head>
<body>
<h1>التعرف على الكيانات المسماة</h1>
<p class="note" lang="en">spacy-aner __VERSION__ &middot; paste Arabic text and press the button: persons (PERS),
locations (LOC), organisations (ORG) and other names (MISC) are marked. JSON API: <code>POST /ner</code>.</p>
<form id="form">
  <textarea id="text" name="text" lang="ar" dir="rtl" placeholder="الصق نصا عربيا هنا">محمد يعيش في الرباط</textarea>
  <button type="submit" id="submit">ابحث عن الكيانات</button>
</form>
<p id="error" role="alert"></p>
<div id="result" aria-live="polite"></div>
<table id="entities" hidden>
  <thead><tr><th>الكيان</th><th>النوع</th><th>الموضع</th><th>الثقة</th></tr></thead>
  <tbody></tbody>
</table>
<script>
const form = document.getElementById("form");
const errorBox = document.getElementById("error");
const result = document.getElementById("result");
const table = document.getElementById("entities");

function cell(row, value, dir) {
  const td = row.insertCell();
  td.textContent = value;  // text, never markup
  if (dir) td.dir = dir;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  errorBox.textContent = "";
  result.replaceChildren();  // an error must not leave the last text's entities on show
  table.hidden = true;
  const button = document.getElementById("submit");
  button.disabled = true;
  try {
    const response = await fetch("render", {
      method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({text: document.getElementById("text").value}),
    });
    const data = await response.json();
    if (!response.ok) {
      errorBox.textContent = data.error || ("HTTP " + response.status);
      return;
    }
    result.innerHTML = data.html;  // displaCy's markup, the text escaped on the server
    const body = table.tBodies[0];
    body.replaceChildren();
    for (const ent of data.entities) {
      const row = body.insertRow();
      cell(row, ent.text);
      cell(row, ent.label);
      cell(row, ent.start + "–" + ent.end, "ltr");  // offsets read left to right: 11–21
      cell(row, ent.score === null || ent.score === undefined ? "–" : ent.score.toFixed(2));
    }
    table.hidden = data.entities.length === 0;
  } catch (err) {
    errorBox.textContent = "request failed: " + err;
  } finally {
    button.disabled = false;
  }
});
</script>
</body>
</html>
"""


def page(version: str) -> str:
    """The page's HTML."""
    return _PAGE.replace("__VERSION__", html.escape(version))
