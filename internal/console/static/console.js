// Rampart console: the few live parts, in plain JavaScript with no library. Pages work
// without it; it only keeps a deployment's page current (server-sent events), fills in a CVSS
// vector from its calculator, and asks before destructive actions.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // Buttons marked data-confirm ask first.
  for (const b of document.querySelectorAll("[data-confirm]")) {
    b.addEventListener("click", (e) => {
      if (!window.confirm(b.dataset.confirm)) e.preventDefault();
    });
  }

  // A live region: <section data-live="/deployments/ID/events"> with [data-field] children.
  const live = document.querySelector("[data-live]");
  if (live && window.EventSource) {
    const status = live.querySelector("[data-live-status]");
    const es = new EventSource(live.dataset.live);
    es.addEventListener("deployment", (ev) => {
      const d = JSON.parse(ev.data);
      for (const el of live.querySelectorAll("[data-field]")) {
        const v = el.dataset.field.split(".").reduce((o, k) => (o == null ? o : o[k]), d);
        if (v !== undefined && v !== null) el.textContent = String(v);
      }
      for (const el of live.querySelectorAll("[data-phase]")) {
        const p = d.phases && d.phases[Number(el.dataset.phase)];
        if (p) el.textContent = p.state || "";
      }
      if (status) status.textContent = "Updated " + new Date().toLocaleTimeString();
      if (d.state === "aborted" || d.state === "completed") {
        es.close();
        if (status) status.textContent = "Deployment " + d.state + "; live updates stopped.";
      }
    });
    es.addEventListener("error", () => {
      if (status) status.textContent = "Live updates interrupted; reload the page to resume.";
    });
  }

  // The CVSS calculator: selects named cvss-<metric> build the vector in #cvss-vector.
  const calc = document.querySelector("[data-cvss]");
  if (calc) {
    const out = document.getElementById(calc.dataset.cvss);
    const update = () => {
      const parts = [calc.dataset.prefix];
      for (const s of calc.querySelectorAll("select[data-metric]")) {
        if (s.value) parts.push(s.dataset.metric + ":" + s.value);
      }
      if (out && parts.length > 1) out.value = parts.join("/");
    };
    for (const s of calc.querySelectorAll("select[data-metric]")) s.addEventListener("change", update);
  }
});
