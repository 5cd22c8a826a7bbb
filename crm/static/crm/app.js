// Page frame behaviour: the phone menu, the search dropdown, dismissable messages.
// A static file, so the Content Security Policy needs no inline script.
(function () {
  "use strict";

  function ready(fn) {
    if (document.readyState !== "loading") fn();
    else document.addEventListener("DOMContentLoaded", fn);
  }

  ready(function () {
    var toggle = document.querySelector("[data-nav-toggle]");
    var topbar = document.querySelector("[data-topbar]");
    if (toggle && topbar) {
      toggle.addEventListener("click", function () {
        var open = topbar.classList.toggle("open");
        toggle.setAttribute("aria-expanded", open ? "true" : "false");
      });
    }

    var results = document.getElementById("global-search-results");
    var search = document.getElementById("global-search");
    if (results && search) {
      document.addEventListener("click", function (event) {
        if (!event.target.closest(".globalsearch")) results.classList.remove("visible");
      });
      search.addEventListener("focus", function () {
        if (results.innerHTML.trim()) results.classList.add("visible");
      });
      search.addEventListener("keydown", function (event) {
        if (event.key === "Escape") results.classList.remove("visible");
        if (event.key === "ArrowDown") {
          var first = results.querySelector("a");
          if (first) { event.preventDefault(); first.focus(); }
        }
      });
      document.body.addEventListener("htmx:afterSwap", function (event) {
        if (event.detail.target === results) {
          results.classList.toggle("visible", results.innerHTML.trim() !== "");
        }
      });
    }

    document.addEventListener("click", function (event) {
      var close = event.target.closest("[data-dismiss]");
      if (close) close.parentElement.remove();
      var menu = document.querySelector("details.usermenu[open]");
      if (menu && !event.target.closest("details.usermenu")) menu.removeAttribute("open");
    });
    // Irreversible actions ask on a page of their own (crm/confirm.py), never in a dialog.

    scrollersFocusable(document);
    document.body.addEventListener("htmx:afterSettle", function () { scrollersFocusable(document); });
    window.addEventListener("resize", function () { scrollersFocusable(document); });
  });

  // A table wider than the window scrolls sideways in its .table-wrap: a keyboard user must be
  // able to reach it to scroll it, and a screen reader hears what it is.
  function scrollersFocusable(root) {
    root.querySelectorAll(".table-wrap").forEach(function (wrap) {
      if (wrap.scrollWidth <= wrap.clientWidth + 1 || wrap.hasAttribute("tabindex")) return;
      var table = wrap.querySelector("table");
      var caption = table && table.querySelector("caption");
      var label = (table && table.getAttribute("aria-label")) || (caption && caption.textContent.trim());
      wrap.tabIndex = 0;
      wrap.setAttribute("role", "region");
      wrap.setAttribute("aria-label", (label || "Table") + " (scrolls sideways)");
    });
  }
})();
