"""The page served at GET / by ``mrcnn serve``: pick a photo, an effect and
classes; the page posts it to /v1/remove-background with fetch(), shows a
progress indicator, then the result (with a download link) and the detected
objects (class and score, from the X-Detections header; the TOP_ROWS best
first, the rest behind "show all"). The background picker shows only for
the "replace" effect. It fits a phone's width (no horizontal scrolling at
420 px). No external scripts, styles or fonts: it works with no network."""

TOP_ROWS = 10  # object rows shown before "show all"

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mrcnn serve - background removal</title>
<style>
 body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222;
        max-width: 60em; overflow-wrap: anywhere; }
 h1 { font-size: 1.4em; margin: 0 0 .3em 0; }
 form { display: grid; grid-template-columns: 8em minmax(0, 1fr);
        gap: .5em 1em; align-items: center; max-width: 36em; }
 form input, form select { min-width: 0; max-width: 100%;
        box-sizing: border-box; }
 select[multiple] { height: 6em; }
 [hidden] { display: none !important; }
 @media (max-width: 30em) {
   body { margin: .8em; }
   form { grid-template-columns: minmax(0, 1fr); gap: .2em; }
   form label { margin-top: .4em; }
 }
 #status { margin: 1em 0; min-height: 1.5em; }
 #status.busy::before { content: ""; display: inline-block; width: 1em;
        height: 1em; margin-right: .5em; vertical-align: middle;
        border: 3px solid #ccc; border-top-color: #36c; border-radius: 50%;
        animation: spin 1s linear infinite; }
 #status.error { color: #b00; }
 @keyframes spin { to { transform: rotate(360deg); } }
 .images { display: flex; gap: 1em; flex-wrap: wrap; }
 .images figure { margin: 0; min-width: 0; max-width: min(24em, 100%); }
 .images img { max-width: 100%; max-height: 24em;
        box-sizing: border-box; border: 1px solid #ccc;
        background: repeating-conic-gradient(#ddd 0% 25%, #fff 0% 50%)
        50% / 16px 16px; }
 table { border-collapse: collapse; margin-top: .5em; }
 td, th { border-bottom: 1px solid #ddd; padding: .2em .8em; text-align: left; }
</style>
</head>
<body>
<h1>Mask R-CNN: remove the background</h1>
<p id="model">Loading the model's classes...</p>
<form id="form">
 <label for="image">Photo</label>
 <input id="image" name="image" type="file" accept="image/jpeg,image/png,image/webp,image/bmp" required>
 <label for="effect">Effect</label>
 <select id="effect" name="effect">
  <option value="cutout" selected>cut-out (transparent background)</option>
  <option value="splash">color splash (gray background)</option>
  <option value="blur">blur the background</option>
  <option value="replace">replace the background with a color</option>
 </select>
 <label for="background" hidden>Background</label>
 <input id="background" name="background" type="color" value="#ffffff" hidden>
 <label for="classes">Classes</label>
 <select id="classes" name="classes" multiple title="none selected: all classes"></select>
 <label for="min_score">Min. score</label>
 <input id="min_score" name="min_score" type="number" min="0" max="1" step="0.01" value="0">
 <span></span>
 <button id="run" type="submit">Remove background</button>
</form>
<div id="status" role="status"></div>
<div class="images">
 <figure><img id="original" alt="" hidden><figcaption id="original-caption"></figcaption></figure>
 <figure><img id="result" alt="result" hidden>
  <figcaption><a id="download" href="#" download="result.png" hidden>Download the result (PNG)</a></figcaption></figure>
</div>
<table id="objects" hidden><thead><tr><th>#</th><th>class</th><th>score</th></tr></thead><tbody></tbody></table>
<button id="show-all" type="button" hidden></button>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
fetch("/health").then(r => r.json()).then(h => {
  $("model").textContent = "Model: " + h.backbone + ", " + h.classes.length +
      " classes. No class selected = all classes.";
  for (const name of h.classes) {
    const o = document.createElement("option");
    o.value = o.textContent = name;
    $("classes").appendChild(o);
  }
}).catch(e => { $("model").textContent = "Cannot reach the server: " + e; });

const TOP_ROWS = %TOP_ROWS%;
function showBackgroundPicker() {
  const replace = $("effect").value === "replace";
  $("background").hidden = !replace;
  document.querySelector("label[for=background]").hidden = !replace;
}
$("effect").addEventListener("change", showBackgroundPicker);
showBackgroundPicker();

// The detected objects, best score first: TOP_ROWS rows, the others behind
// a "show all" button.
function showObjects(found) {
  const sorted = found.map((d, i) => [i, d]).sort((a, b) => b[1].score - a[1].score);
  const body = $("objects").tBodies[0];
  body.textContent = "";
  sorted.forEach(([i, d], rank) => {
    const tr = body.insertRow();
    tr.insertCell().textContent = i + 1;
    tr.insertCell().textContent = d.class_name;
    tr.insertCell().textContent = d.score.toFixed(3);
    tr.hidden = rank >= TOP_ROWS;
  });
  $("objects").hidden = false;
  const more = $("show-all");
  more.hidden = sorted.length <= TOP_ROWS;
  more.textContent = "Show all " + sorted.length + " objects";
  more.onclick = () => {
    for (const tr of body.rows) tr.hidden = false;
    more.hidden = true;
  };
}

$("image").addEventListener("change", () => {
  const f = $("image").files[0];
  if (!f) return;
  $("original").src = URL.createObjectURL(f);
  $("original").hidden = false;
  $("original-caption").textContent = f.name;
});

let resultUrl = null;
$("form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const file = $("image").files[0];
  if (!file) return;
  const data = new FormData();
  data.append("image", file, file.name);
  const effect = $("effect").value;
  data.append("effect", effect);
  if (effect === "replace") {
    const bg = $("background").value;
    data.append("background", [1, 3, 5].map(i => parseInt(bg.substr(i, 2), 16)).join(","));
  }
  const classes = Array.from($("classes").selectedOptions).map(o => o.value);
  if (classes.length) data.append("classes", classes.join(","));
  data.append("min_score", $("min_score").value || "0");
  const status = $("status");
  status.className = "busy";
  status.textContent = "Detecting objects...";
  $("run").disabled = true;
  document.body.dataset.state = "busy";
  const t0 = performance.now();
  try {
    const r = await fetch("/v1/remove-background", {method: "POST", body: data});
    if (!r.ok) {
      let msg = r.status + " " + r.statusText;
      try { msg = (await r.json()).error || msg; } catch (e) {}
      throw new Error(msg);
    }
    const found = JSON.parse(r.headers.get("X-Detections") || "[]");
    const blob = await r.blob();
    if (resultUrl) URL.revokeObjectURL(resultUrl);
    resultUrl = URL.createObjectURL(blob);
    const img = $("result");
    await new Promise((ok, fail) => { img.onload = ok; img.onerror = fail; img.src = resultUrl; });
    img.hidden = false;
    const a = $("download");
    a.href = resultUrl;
    a.download = file.name.replace(/\\.[^.]*$/, "") + "_" + effect + ".png";
    a.hidden = false;
    showObjects(found);
    status.className = "";
    status.textContent = found.length + " object(s) found in " +
        ((performance.now() - t0) / 1000).toFixed(1) + " s.";
    document.body.dataset.state = "done";
  } catch (e) {
    status.className = "error";
    status.textContent = "Error: " + e.message;
    document.body.dataset.state = "error";
  } finally {
    $("run").disabled = false;
  }
});
</script>
</body>
</html>
""".replace("%TOP_ROWS%", str(TOP_ROWS))
