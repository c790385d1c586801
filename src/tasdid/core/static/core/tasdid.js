// Progressive enhancement only: every page works without this file.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // Forms that carry the browser to another party submit themselves.
  var auto = document.querySelector("form[data-autosubmit]");
  if (auto) { auto.submit(); return; }
  // A form is submitted once: a second click does nothing (the server refuses a replay anyway).
  document.querySelectorAll("form[data-submit-once]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (form.dataset.submitted === "1") { event.preventDefault(); return; }
      form.dataset.submitted = "1";
    });
  });
  // A form sent back with errors: the focus goes to the list of its errors, read out and one Tab from the first
  // link to a field (core/includes/error_summary.html).
  var summary = document.querySelector("[data-error-summary]");
  if (summary) { summary.focus(); }
  // Print buttons.
  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.addEventListener("click", function () { window.print(); });
  });
});
