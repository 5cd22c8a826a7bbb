/* The visual rule builder: edits the rule JSON in #id_rule and shows a live, debounced count
   from POST /api/segments/preview/. No inline scripts or styles (CSP). */
(function () {
  "use strict";
  const form = document.getElementById("segment-form");
  const textarea = document.getElementById("id_rule");
  const root = document.getElementById("rule-builder");
  const catalogueNode = document.getElementById("rule-catalogue");
  if (!form || !textarea || !root || !catalogueNode) return;
  const catalogue = JSON.parse(catalogueNode.textContent);
  const fields = Object.fromEntries(catalogue.fields.map((f) => [f.name, f]));
  const metrics = Object.fromEntries(catalogue.metrics.map((m) => [m.name, m]));
  const countBox = document.getElementById("live-count");
  const errorsBox = document.getElementById("rule-errors");
  const notice = document.getElementById("protected-notice");
  const kindSelect = document.getElementById("id_kind");
  const NO_VALUE = ["is_empty", "is_not_empty"];
  const LIST_OPS = ["in", "not_in"];
  const OP_LABELS = {
    eq: "is", ne: "is not", gt: ">", gte: "≥", lt: "<", lte: "≤", between: "between", in: "is one of",
    not_in: "is none of", contains: "contains", starts_with: "starts with", ends_with: "ends with",
    is_empty: "is empty", is_not_empty: "is not empty", before: "before", after: "after",
    within_last_days: "within the last (days)",
  };

  // Model: a group is {type: "all"|"any", negated, children}; a condition is {rule: {...}}.
  function toModel(node) {
    if (node && node.not !== undefined) {
      const inner = toModel(node.not);
      if (inner.children) { inner.negated = !inner.negated; return inner; }
      return { type: "all", negated: true, children: [inner] };
    }
    if (node && (node.all || node.any)) {
      const type = node.all ? "all" : "any";
      return { type, negated: false, children: node[type].map(toModel) };
    }
    if (node && Object.keys(node).length) return { rule: node };
    return { type: "all", negated: false, children: [] };
  }
  function toRule(model) {
    if (!model.children) return model.rule;
    const group = { [model.type]: model.children.map(toRule) };
    return model.negated ? { not: group } : group;
  }

  let model;
  try { model = toModel(JSON.parse(textarea.value || "{}")); } catch (e) { model = toModel({}); }
  if (!model.children) model = { type: "all", negated: false, children: [model] };

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => {
      if (k === "text") node.textContent = v; else if (v !== undefined && v !== null) node.setAttribute(k, v);
    });
    (children || []).forEach((c) => node.appendChild(c));
    return node;
  }
  function select(options, value, attrs) {
    const s = el("select", attrs);
    options.forEach(([v, label]) => {
      const o = el("option", { value: v, text: label });
      if (String(v) === String(value)) o.selected = true;
      s.appendChild(o);
    });
    return s;
  }
  function defaultCondition(kind) {
    if (kind === "metric") return { metric: "purchase_count", op: "gte", value: 1, window: { last_days: 365 } };
    if (kind === "consent") return { consent: catalogue.purposes[0] || "email_marketing", state: "granted" };
    if (kind === "segment") return { segment: (catalogue.segments[0] || {}).id || 0 };
    return { field: "country", op: "eq", value: "" };
  }
  function conditionKind(rule) {
    if (rule.metric) return "metric";
    if (rule.consent) return "consent";
    if (rule.segment !== undefined) return "segment";
    return "field";
  }
  function valueKind(rule) {
    if (rule.metric) return metrics[rule.metric] ? metrics[rule.metric].kind : "number";
    if (rule.field && rule.field.startsWith("attr.")) return "attr";
    return fields[rule.field] ? fields[rule.field].kind : "text";
  }
  function parseScalar(kind, raw) {
    if (kind === "integer" || kind === "user") return raw === "" ? raw : parseInt(raw, 10);
    if (kind === "number") return raw === "" ? raw : Number(raw);
    if (kind === "attr") {
      if (raw === "true") return true;
      if (raw === "false") return false;
      return raw !== "" && !isNaN(Number(raw)) ? Number(raw) : raw;
    }
    return raw;
  }
  function inputType(kind, op) {
    if (op === "within_last_days") return "number";
    if (kind === "date") return "date";
    if (kind === "integer" || kind === "number" || kind === "user") return "number";
    return "text";
  }

  function valueEditor(rule, changed) {
    const op = rule.op;
    const kind = valueKind(rule);
    const wrap = el("span", { class: "rule-value" });
    if (NO_VALUE.includes(op)) { delete rule.value; return wrap; }
    const spec = rule.field && fields[rule.field] ? fields[rule.field] : null;
    const choices = spec ? spec.choices : [];
    const choiceLabels = (spec && spec.choice_labels) || {};
    const scalarKind = op === "within_last_days" ? "integer" : kind;
    const users = kind === "user" ? (catalogue.users || []).map((u) => [u.id, u.name]) : [];
    const make = (value, onValue, label) => {
      let input;
      if (users.length && !LIST_OPS.includes(op)) {
        // An owner the rule names who no longer owns customers stays chosen, by number.
        const known = value === undefined || value === "" || users.some(([id]) => String(id) === String(value));
        input = select(known ? users : [[value, "user #" + value]].concat(users), value, { "aria-label": label === "value" ? "owner" : label });
        if (value === undefined || value === "") onValue(users[0][0]);
      } else if (choices.length && !LIST_OPS.includes(op)) {
        input = select(choices.map((c) => [c, choiceLabels[c] || c]), value, { "aria-label": label });
        if (value === undefined || value === "") onValue(choices[0]);
      } else {
        input = el("input", { type: inputType(kind, op), value: value === undefined ? "" : value, "aria-label": label, step: kind === "number" ? "0.01" : undefined });
      }
      input.addEventListener("change", () => { onValue(parseScalar(scalarKind, input.value)); changed(); });
      input.addEventListener("input", () => { onValue(parseScalar(scalarKind, input.value)); changed(true); });
      return input;
    };
    if (op === "between") {
      const v = Array.isArray(rule.value) ? rule.value : ["", ""];
      rule.value = v;
      wrap.appendChild(make(v[0], (x) => { v[0] = x; }, "from"));
      wrap.appendChild(el("span", { class: "muted", text: " and " }));
      wrap.appendChild(make(v[1], (x) => { v[1] = x; }, "to"));
    } else if (LIST_OPS.includes(op) && users.length) {
      rule.value = Array.isArray(rule.value) ? rule.value : [];
      const chosen = rule.value.map(String);
      const input = select(users, null, { "aria-label": "owners", multiple: "multiple", size: String(Math.min(users.length, 5)), class: "owner-list" });
      Array.from(input.options).forEach((o) => { o.selected = chosen.includes(o.value); });
      input.addEventListener("change", () => { rule.value = Array.from(input.selectedOptions).map((o) => parseInt(o.value, 10)); changed(); });
      wrap.appendChild(input);
    } else if (LIST_OPS.includes(op)) {
      const v = Array.isArray(rule.value) ? rule.value : [];
      rule.value = v;
      const input = el("input", { type: "text", value: v.join(", "), placeholder: "a, b, c", "aria-label": "values" });
      const update = () => { rule.value = input.value.split(",").map((s) => s.trim()).filter(Boolean).map((s) => parseScalar(kind, s)); };
      input.addEventListener("input", () => { update(); changed(true); });
      input.addEventListener("change", () => { update(); changed(); });
      wrap.appendChild(input);
    } else {
      if (Array.isArray(rule.value)) rule.value = "";
      wrap.appendChild(make(rule.value, (x) => { rule.value = x; }, "value"));
    }
    return wrap;
  }

  function conditionEditor(node, parent, index) {
    const rule = node.rule;
    const row = el("div", { class: "rule-condition" });
    const kind = conditionKind(rule);
    const kindSel = select([["field", "Profile"], ["metric", "Behaviour"], ["consent", "Consent"], ["segment", "Segment"]], kind, { "aria-label": "condition type", class: "condition-kind" });
    kindSel.addEventListener("change", () => { node.rule = defaultCondition(kindSel.value); render(); });
    row.appendChild(kindSel);

    if (kind === "field") {
      const isAttr = rule.field.startsWith("attr.");
      const options = catalogue.fields.map((f) => [f.name, f.label]).concat([["attr.", "Custom attribute…"]]);
      const fieldSel = select(options, isAttr ? "attr." : rule.field, { "aria-label": "field", class: "condition-field" });
      fieldSel.addEventListener("change", () => {
        rule.field = fieldSel.value === "attr." ? "attr.key" : fieldSel.value;
        const ops = rule.field.startsWith("attr.") ? catalogue.attr_operators : fields[rule.field].operators;
        rule.op = ops[0]; delete rule.value; render();
      });
      row.appendChild(fieldSel);
      if (isAttr) {
        const key = el("input", { type: "text", value: rule.field.slice(5), "aria-label": "attribute key", class: "attr-key" });
        key.addEventListener("input", () => { rule.field = "attr." + key.value.trim(); changed(true); });
        row.appendChild(key);
      }
      const ops = isAttr ? catalogue.attr_operators : (fields[rule.field] || { operators: ["eq"] }).operators;
      row.appendChild(opSelect(rule, ops));
      row.appendChild(valueEditor(rule, changed));
    } else if (kind === "metric") {
      const metricSel = select(catalogue.metrics.map((m) => [m.name, m.label]), rule.metric, { "aria-label": "metric", class: "condition-metric" });
      metricSel.addEventListener("change", () => { rule.metric = metricSel.value; rule.filter = undefined; delete rule.filter; rule.op = metrics[rule.metric].operators[0]; render(); });
      row.appendChild(metricSel);
      row.appendChild(opSelect(rule, metrics[rule.metric].operators));
      row.appendChild(valueEditor(rule, changed));
      const days = el("input", { type: "number", min: "1", value: rule.window && rule.window.last_days ? rule.window.last_days : "", placeholder: "all time", "aria-label": "in the last days", class: "window-days" });
      days.addEventListener("input", () => {
        const n = parseInt(days.value, 10);
        if (n > 0) rule.window = { last_days: n }; else delete rule.window;
        changed(true);
      });
      row.appendChild(el("span", { class: "muted", text: "in the last" }));
      row.appendChild(days);
      row.appendChild(el("span", { class: "muted", text: "days" }));
      const filters = metrics[rule.metric].filters;
      const current = rule.filter ? Object.keys(rule.filter)[0] : "";
      const filterSel = select([["", "no filter"]].concat(filters.map((f) => [f, f.replace("_", " ")])), current, { "aria-label": "filter", class: "filter-key" });
      const filterVal = el("input", { type: "text", value: current ? rule.filter[current] : "", "aria-label": "filter value", class: "filter-value" });
      const updateFilter = () => {
        if (filterSel.value && filterVal.value.trim()) rule.filter = { [filterSel.value]: filterVal.value.trim() }; else delete rule.filter;
      };
      filterSel.addEventListener("change", () => { updateFilter(); changed(); });
      filterVal.addEventListener("input", () => { updateFilter(); changed(true); });
      row.appendChild(filterSel);
      row.appendChild(filterVal);
    } else if (kind === "consent") {
      const purpose = select(catalogue.purposes.map((p) => [p, p.replace("_", " ")]), rule.consent, { "aria-label": "purpose" });
      purpose.addEventListener("change", () => { rule.consent = purpose.value; changed(); });
      const state = select(catalogue.consent_states.map((s) => [s, s]), rule.state, { "aria-label": "consent state" });
      state.addEventListener("change", () => { rule.state = state.value; changed(); });
      row.appendChild(purpose); row.appendChild(el("span", { class: "muted", text: "is" })); row.appendChild(state);
    } else {
      const seg = select(catalogue.segments.map((s) => [s.id, s.name]), rule.segment, { "aria-label": "segment" });
      seg.addEventListener("change", () => { rule.segment = parseInt(seg.value, 10); changed(); });
      row.appendChild(el("span", { class: "muted", text: "member of" })); row.appendChild(seg);
    }
    const remove = el("button", { type: "button", class: "button small danger", text: "Remove", "aria-label": "remove condition" });
    remove.addEventListener("click", () => { parent.children.splice(index, 1); render(); });
    row.appendChild(remove);
    return row;

    function opSelect(r, ops) {
      if (!ops.includes(r.op)) r.op = ops[0];
      const s = select(ops.map((o) => [o, OP_LABELS[o] || o]), r.op, { "aria-label": "operator", class: "condition-op" });
      s.addEventListener("change", () => { r.op = s.value; if (!LIST_OPS.includes(r.op) && r.op !== "between") { if (Array.isArray(r.value)) delete r.value; } render(); });
      return s;
    }
  }

  function groupEditor(group, parent, index) {
    const box = el("div", { class: "rule-group" + (group.negated ? " negated" : "") });
    const head = el("div", { class: "rule-group-head" });
    const neg = el("label", { class: "negate" });
    const negBox = el("input", { type: "checkbox", "aria-label": "not" });
    negBox.checked = group.negated;
    negBox.addEventListener("change", () => { group.negated = negBox.checked; render(); });
    neg.appendChild(negBox); neg.appendChild(document.createTextNode(" not"));
    head.appendChild(neg);
    const type = select([["all", "all of"], ["any", "any of"]], group.type, { "aria-label": "group type", class: "group-type" });
    type.addEventListener("change", () => { group.type = type.value; changed(); });
    head.appendChild(el("span", { class: "muted", text: "Customers matching" }));
    head.appendChild(type);
    const addCond = el("button", { type: "button", class: "button small add-condition", text: "+ Condition" });
    addCond.addEventListener("click", () => { group.children.push({ rule: defaultCondition("field") }); render(); });
    const addGroup = el("button", { type: "button", class: "button small add-group", text: "+ Group" });
    addGroup.addEventListener("click", () => { group.children.push({ type: "any", negated: false, children: [{ rule: defaultCondition("field") }] }); render(); });
    head.appendChild(addCond); head.appendChild(addGroup);
    if (parent) {
      const remove = el("button", { type: "button", class: "button small danger", text: "Remove group" });
      remove.addEventListener("click", () => { parent.children.splice(index, 1); render(); });
      head.appendChild(remove);
    }
    box.appendChild(head);
    const list = el("div", { class: "rule-children" });
    group.children.forEach((child, i) => {
      list.appendChild(child.children ? groupEditor(child, group, i) : conditionEditor(child, group, i));
    });
    if (!group.children.length) list.appendChild(el("p", { class: "muted small", text: parent ? "Empty group." : "No conditions: every customer matches." }));
    box.appendChild(list);
    return box;
  }

  let timer = null;
  let sequence = 0;
  function changed(typing) {
    textarea.value = JSON.stringify(toRule(model), null, 2);
    clearTimeout(timer);
    timer = setTimeout(preview, typing ? 450 : 250);
  }
  function render() {
    root.replaceChildren(groupEditor(model, null, 0));
    changed();
  }
  function csrfToken() {
    const input = form.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }
  function preview() {
    if (kindSelect && kindSelect.value === "static") { countBox.textContent = "Static segment: members are added by hand."; return; }
    const body = { rule: toRule(model) };
    if (form.dataset.segment) body.segment = parseInt(form.dataset.segment, 10);
    const mine = ++sequence;
    countBox.textContent = "Counting…";
    countBox.classList.add("busy");
    countBox.setAttribute("aria-busy", "true");
    fetch(form.dataset.previewUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken(), Accept: "application/json" },
      body: JSON.stringify(body),
    }).then((r) => r.json().then((data) => ({ ok: r.ok, data }))).then(({ ok, data }) => {
      if (mine !== sequence) return;
      countBox.classList.remove("busy");
      countBox.removeAttribute("aria-busy");
      errorsBox.replaceChildren();
      if (!ok) {
        countBox.textContent = "Fix the rule to see the count";
        (data.rule || [data.detail || "Invalid rule"]).forEach((msg) => errorsBox.appendChild(el("li", { text: msg })));
        return;
      }
      let text = `${data.count.toLocaleString()} customer${data.count === 1 ? "" : "s"} match`;
      if (data.would_join !== null && data.would_join !== undefined) text += ` · ${data.would_join} would join, ${data.would_leave} would leave`;
      countBox.textContent = text;
      const protectedList = data.protected_characteristics || [];
      notice.classList.toggle("hidden", !protectedList.length);
      notice.querySelector("[data-protected-list]").textContent = protectedList.join(", ");
    }).catch(() => {
      if (mine !== sequence) return;
      countBox.classList.remove("busy");
      countBox.removeAttribute("aria-busy");
      countBox.textContent = "Count unavailable";
    });
  }

  textarea.addEventListener("change", () => {
    try { model = toModel(JSON.parse(textarea.value || "{}")); if (!model.children) model = { type: "all", negated: false, children: [model] }; render(); } catch (e) { /* keep typing */ }
  });
  if (kindSelect) kindSelect.addEventListener("change", () => { document.getElementById("rule-section").classList.toggle("hidden", kindSelect.value === "static"); preview(); });
  if (kindSelect && kindSelect.value === "static") document.getElementById("rule-section").classList.add("hidden");
  form.addEventListener("submit", () => { textarea.value = kindSelect && kindSelect.value === "static" ? "" : JSON.stringify(toRule(model)); });
  render();
})();
