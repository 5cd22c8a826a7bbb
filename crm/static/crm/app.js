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
  });
})();
