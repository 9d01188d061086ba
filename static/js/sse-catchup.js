// When the page's event stream opens (after the page loaded, or again after a reconnect), every
// panel bound to its events reads itself once: what ended while the stream was not connected (an
// operation that finished between the page's render and the connection) sent no event to it, and
// the panel would show the old state until its slow fallback poll.
document.addEventListener("htmx:sseOpen", function () {
  document.querySelectorAll("[hx-trigger*='sse:']").forEach(function (el) {
    var name = el.getAttribute("hx-trigger").match(/sse:[\w-]+/);
    if (name) htmx.trigger(el, name[0]);
  });
});
