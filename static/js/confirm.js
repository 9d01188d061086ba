// Destructive plain forms ask first, as htmx's hx-confirm does for htmx forms: a form, or the
// button that submits it, with data-confirm="question" is sent only if the user says OK.
document.addEventListener("submit", function (event) {
  var question = (event.submitter && event.submitter.dataset.confirm) || event.target.dataset.confirm;
  if (question && !window.confirm(question)) {
    event.preventDefault();
    event.stopImmediatePropagation();
  }
}, true);
