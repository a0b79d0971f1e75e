// optout pages: the little behaviour htmx does not cover. No inline scripts (the pages'
// Content-Security-Policy forbids them), so everything hangs off data- attributes.
(function () {
  "use strict";

  // A "select all" box checks every row box named by its data-select-all selector, and
  // reveals the elements named by data-reveal while it is checked.
  function syncSelectAll(box) {
    var rows = document.querySelectorAll(box.dataset.selectAll);
    rows.forEach(function (row) { row.checked = box.checked; });
    if (box.dataset.reveal) {
      document.querySelectorAll(box.dataset.reveal).forEach(function (el) {
        el.hidden = !box.checked;
      });
    }
    refreshCount(box.form);
  }

  // A form's [data-selected-count] shows how many row boxes are checked, and its
  // [data-needs-selection] buttons are enabled only when some are (or "all matching" is).
  function refreshCount(form) {
    if (!form) { return; }
    var checked = form.querySelectorAll("input[data-row]:checked").length;
    var matching = form.querySelector("input[data-all-matching]:checked");
    form.querySelectorAll("[data-selected-count]").forEach(function (el) {
      el.textContent = matching ? matching.dataset.allMatching : String(checked);
    });
    form.querySelectorAll("[data-needs-selection]").forEach(function (button) {
      button.disabled = !(checked || matching);
    });
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (!(target instanceof HTMLInputElement)) { return; }
    if (target.dataset.selectAll) {
      syncSelectAll(target);
    } else if (target.dataset.row !== undefined || target.dataset.allMatching) {
      if (target.dataset.row !== undefined && !target.checked) {
        var all = target.form && target.form.querySelector("input[data-select-all]");
        if (all) { all.checked = false; }
        var matching = target.form && target.form.querySelector("input[data-all-matching]");
        if (matching) { matching.checked = false; }
      }
      refreshCount(target.form);
    }
  });

  // Filter builder inputs must not trigger the form's live preview: only the filter
  // text matters, and it changes when a condition is added.
  ["input", "change"].forEach(function (kind) {
    document.addEventListener(kind, function (event) {
      if (event.target instanceof Element && event.target.closest("[data-builder]")) {
        event.stopPropagation();
      }
    }, true);
  });

  // Buttons with data-confirm ask first.
  document.addEventListener("click", function (event) {
    var button = event.target instanceof Element && event.target.closest("[data-confirm]");
    if (button && !window.confirm(button.dataset.confirm)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form").forEach(refreshCount);
  });
})();
