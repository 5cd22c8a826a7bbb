// The lists (deals, customers, accounts): the checkbox in the header ticks or clears every row on the page.
(function () {
  "use strict";
  document.addEventListener("change", function (event) {
    var all = event.target;
    if (!all.classList || !all.classList.contains("select-all")) return;
    var boxes = document.querySelectorAll('input[type="checkbox"][name="ids"]');
    for (var i = 0; i < boxes.length; i++) boxes[i].checked = all.checked;
  });
})();
