// Tasdid Pay: defer and restore invoices without reloading the page, so that what the customer typed in the
// card form stays there. Progressive enhancement only: without this file every button posts the page back.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // The card form came back with errors: the summary at its top takes the focus, so that it is read first;
  // each of its links leads to the field to correct.
  var summary = document.getElementById("error-summary");
  if (summary) { summary.focus(); }
  var panel = document.getElementById("invoices");
  var cardForm = document.getElementById("card-form");
  if (!panel || !cardForm) { return; }

  function sync() {
    var inner = panel.querySelector("[data-total]");
    if (!inner) { return; }
    var total = document.getElementById("pay-total");
    if (total) { total.textContent = inner.getAttribute("data-total"); }
    var selection = cardForm.querySelector("input[name=selection]");
    if (selection) { selection.value = inner.getAttribute("data-selection"); }
  }

  panel.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.hasAttribute("data-invoice-action")) { return; }
    event.preventDefault();
    // getAttribute: the form's hidden input named "action" shadows form.action
    fetch(form.getAttribute("action"), {
      method: "POST",
      body: new FormData(form),
      credentials: "same-origin",
      headers: { "X-Tasdid-Fragment": "invoices" }
    }).then(function (response) {
      if (!response.ok && response.status !== 400) { throw new Error("HTTP " + response.status); }
      return response.text();
    }).then(function (html) {
      panel.innerHTML = html;
      sync();
      var title = document.getElementById("invoices-title");
      if (title) { title.setAttribute("tabindex", "-1"); title.focus(); }
    }).catch(function () {
      HTMLFormElement.prototype.submit.call(form);  // the page's own post back
    });
  });
});
