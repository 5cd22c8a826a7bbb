// Record pickers (crm.forms.RecordPicker): a search box with the ARIA combobox pattern. htmx
// fills the listbox with options as the user types; this script moves through them with the
// arrow keys, chooses one with Enter or a click (its id goes into the hidden input the form
// submits, its name into the box) and closes the list with Escape. Names are read from data
// attributes and written as text, never as markup.
(function () {
  "use strict";
  function parts(el) {
    var picker = el.closest("[data-picker]");
    if (!picker) return null;
    return {
      picker: picker,
      box: picker.querySelector("[role=combobox]"),
      value: picker.querySelector("[data-picker-value]"),
      list: picker.querySelector("[role=listbox]")
    };
  }
  function options(p) { return Array.prototype.slice.call(p.list.querySelectorAll("[role=option][data-value]")); }
  function close(p) {
    p.list.textContent = "";
    p.box.setAttribute("aria-expanded", "false");
    p.box.removeAttribute("aria-activedescendant");
  }
  function choose(p, option) {
    p.value.value = option.getAttribute("data-value");
    p.box.value = option.getAttribute("data-label");
    close(p);
    p.value.dispatchEvent(new Event("change", { bubbles: true }));
  }
  function activate(p, index) {
    var all = options(p);
    if (!all.length) return;
    index = (index + all.length) % all.length;
    all.forEach(function (o, i) { o.setAttribute("aria-selected", i === index ? "true" : "false"); });
    p.box.setAttribute("aria-activedescendant", all[index].id);
    all[index].scrollIntoView({ block: "nearest" });
  }
  function current(p) {
    var id = p.box.getAttribute("aria-activedescendant");
    return id ? document.getElementById(id) : null;
  }
  document.addEventListener("keydown", function (event) {
    if (!event.target.matches || !event.target.matches("[data-picker] [role=combobox]")) return;
    var p = parts(event.target);
    var all = options(p);
    var active = current(p);
    var index = active ? all.indexOf(active) : -1;
    if (event.key === "ArrowDown") { event.preventDefault(); activate(p, index + 1); }
    else if (event.key === "ArrowUp") { event.preventDefault(); activate(p, index - 1); }
    else if (event.key === "Enter" && active) { event.preventDefault(); choose(p, active); }
    else if (event.key === "Escape") { close(p); }
  });
  document.addEventListener("input", function (event) {
    if (!event.target.matches || !event.target.matches("[data-picker] [role=combobox]")) return;
    parts(event.target).value.value = "";  // a new text names no record until one is chosen
  });
  document.addEventListener("click", function (event) {
    var option = event.target.closest && event.target.closest("[data-picker] [role=option][data-value]");
    if (option) { choose(parts(option), option); return; }
    document.querySelectorAll("[data-picker]").forEach(function (picker) {
      if (!picker.contains(event.target)) close(parts(picker));
    });
  });
  document.addEventListener("htmx:afterSwap", function (event) {
    var list = event.detail && event.detail.target;
    if (!list || !list.matches || !list.matches("[data-picker] [role=listbox]")) return;
    var p = parts(list);
    p.box.removeAttribute("aria-activedescendant");
    p.box.setAttribute("aria-expanded", list.children.length ? "true" : "false");
  });
})();
