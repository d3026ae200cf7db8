// The review page: one key answers, the next input appears at once. Everything it needs
// comes from this server (no CDN); every answer is saved by the server before it counts.
"use strict";
const reviewer = (() => {
  const given = new URLSearchParams(location.search).get("reviewer");
  if (given) { localStorage.setItem("digits-reviewer", given); return given; }
  let kept = localStorage.getItem("digits-reviewer");
  if (!kept) { kept = "reviewer-" + Math.random().toString(36).slice(2, 8); localStorage.setItem("digits-reviewer", kept); }
  return kept;
})();
let current = null;
let busy = false;

function $(id) { return document.getElementById(id); }

function showProgress(p) {
  $("progress").textContent = `${p.answered} of ${p.total} answered · ${p.per_minute} per minute · ${reviewer}`;
  document.body.dataset.answered = String(p.answered);
}

async function call(path, body) {
  const response = await fetch(path, body === undefined ? {} : {
    method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
  const payload = await response.json();
  if (!response.ok) throw new Error(payload.error || response.statusText);
  return payload;
}

async function next() {
  const payload = await call(`/api/next?reviewer=${encodeURIComponent(reviewer)}`);
  showProgress(payload);
  current = payload.item;
  $("card").hidden = current === null;
  $("done").hidden = current !== null;
  if (current === null) { document.body.dataset.item = ""; return; }
  for (const [id, kind] of [["original", "original"], ["seen", "seen"]]) {
    $(id).removeAttribute("src");  // never the last input's image beside this one's figures
    $(id).src = `/api/${kind}/${current.index}`;
  }
  $("name").textContent = current.name;
  $("prediction").textContent = `model: ${current.digit} · calibrated confidence ${current.calibrated_confidence.toFixed(3)} · ${current.status}`;
  $("reasons").textContent = current.reasons.length ? `reasons: ${current.reasons.join(", ")}` : "";
  document.body.dataset.item = String(current.index);
}

async function answer(value) {
  if (current === null || busy) return;
  busy = true;
  try {
    const payload = await call("/api/answer", {index: current.index, answer: value, reviewer});
    $("message").textContent = `saved: ${current.name} → ${value}`;
    showProgress(payload);
    await next();
  } catch (error) { $("message").textContent = `not saved: ${error.message}`; }
  finally { busy = false; }
}

async function undo() {
  if (busy) return;
  busy = true;
  try {
    const payload = await call("/api/undo", {reviewer});
    $("message").textContent = payload.undone ? `undone: ${payload.undone.answer}` : "nothing to undo";
    await next();
  } catch (error) { $("message").textContent = `not undone: ${error.message}`; }
  finally { busy = false; }
}

document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const key = event.key.toLowerCase();
  if (/^[0-9]$/.test(key)) answer(key);
  else if (key === "n") answer("not_a_digit");
  else if (key === "s") answer("skip");
  else if (key === "u") undo();
  else return;
  event.preventDefault();
});

function row(cells, header) {
  const tr = document.createElement("tr");
  for (const cell of cells) { const td = document.createElement(header ? "th" : "td"); td.textContent = cell; tr.appendChild(td); }
  return tr;
}

function chart(history) {
  const svg = $("history"), w = 420, h = 120, colours = {accepted: "#43a047", review: "#fb8c00", not_a_digit: "#8e24aa"};
  svg.replaceChildren();
  if (!history.length) return;
  const bar = w / history.length;
  history.forEach((night, i) => {
    let y = h;
    for (const status of ["accepted", "review", "not_a_digit"]) {
      const height = (night[status] || 0) * h;
      const rect = document.createElementNS("http://www.w3.org/2000/svg", "rect");
      Object.entries({x: i * bar + 1, y: y - height, width: bar - 2, height, fill: colours[status]}).forEach(([k, v]) => rect.setAttribute(k, v));
      const title = document.createElementNS("http://www.w3.org/2000/svg", "title");
      title.textContent = `${night.date} ${status}: ${((night[status] || 0) * 100).toFixed(1)}%`;
      rect.appendChild(title);
      svg.appendChild(rect);
      y -= height;
    }
  });
  const label = document.createElementNS("http://www.w3.org/2000/svg", "text");
  label.setAttribute("x", 0); label.setAttribute("y", h + 16);
  label.textContent = `last ${history.length} nights: accepted / review / not_a_digit`;
  svg.appendChild(label);
}

async function night() {
  const n = await call("/api/night");
  $("date").textContent = n.date || "";
  const statuses = $("statuses");
  statuses.replaceChildren(row(["status", "inputs"], true), ...Object.entries(n.statuses).map(([k, v]) => row([k, v])));
  const reasons = $("reason-table");
  reasons.replaceChildren(row(["reason", "inputs"], true), ...Object.entries(n.reasons).filter(([, v]) => v > 0).map(([k, v]) => row([k, v])));
  const drift = $("drift");
  drift.className = n.drift.alarm ? "alarm" : "";
  const levels = n.drift.levels.map((l) => `${l.histogram} vs ${l.against}: ${l.level}`).join(" · ");
  drift.textContent = (n.drift.alarm ? `drift alarm: ${n.drift.breaches.join(", ")}. ` : "no drift alarm. ") + levels;
  chart(n.history);
  showProgress(n.progress);
}

night().then(next).catch((error) => { $("progress").textContent = `cannot load: ${error.message}`; });
