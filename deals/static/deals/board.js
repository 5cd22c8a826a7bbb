// The deal board: drag a card to another column to move the deal to that stage. The move is
// posted to the card's move URL with the CSRF header (the same view the select on each card
// posts to without JavaScript); the page then reloads so that the columns' totals are right.
(function () {
  "use strict";
  function csrfToken() {
    var input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }
  function status(text) {
    var box = document.querySelector("[data-board-status]");
    if (box) box.textContent = text;
  }
  function move(card, stageId, undo) {
    var body = new URLSearchParams();
    body.set("stage", stageId);
    status("Moving…");
    return fetch(card.getAttribute("data-move-url"), {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), "Accept": "application/json" },
      body: body
    }).then(function (response) {
      if (!response.ok) throw new Error("The move was refused (" + response.status + ").");
      window.location.reload();
    }).catch(function (error) {
      undo();
      status(error.message);
    });
  }
  function start() {
    var board = document.querySelector("[data-board-editable]");
    if (!board || typeof window.Sortable === "undefined") return;
    board.querySelectorAll(".board-cards").forEach(function (list) {
      window.Sortable.create(list, {
        group: "deals",
        animation: 120,
        forceFallback: true,
        filter: "select, button, a",
        preventOnFilter: false,
        onEnd: function (event) {
          var to = event.to.getAttribute("data-stage");
          if (event.from === event.to) return;
          var from = event.from, item = event.item, index = event.oldIndex;
          move(item, to, function () {
            from.insertBefore(item, from.children[index] || null);
          });
        }
      });
    });
  }
  if (document.readyState !== "loading") start();
  else document.addEventListener("DOMContentLoaded", start);
})();
