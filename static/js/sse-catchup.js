// Panels bound to the page's event stream (hx-trigger "sse:NAME") must not miss an event.
//
// 1. When the stream opens (after the page loaded, or again after a reconnect), every such panel
//    reads itself once: what ended while the stream was not connected (an operation that finished
//    between the page's render and the connection) sent no event to it, and the panel would show
//    the old state until its slow fallback poll.
//
// 2. A panel that replaces itself (an operation card: hx-swap outerHTML) loses an event that comes
//    while its read is on its way: hx-sync queues the event's read on the old element, and htmx
//    drops a request of an element that is no longer in the page once the answer has replaced it
//    (an event in the settle delay after the swap finds no listener at all). So this script hears
//    every event a panel is bound to, notes when a panel's read started, and when the element that
//    read brought in appears with an event that came after the read started, it reads once more:
//    the answer may have been made before the change the event announced.
(function () {
  var heard = {}; // SSE name -> when its last message came (performance.now())
  var reads = {}; // element id -> its last read: {el: the element that read, at: when it started}
  var listening = {}; // SSE name -> the event source this script listens to it on

  function names(el) {
    var trigger = el.getAttribute && el.getAttribute("hx-trigger");
    var found = trigger ? trigger.match(/sse:[\w-]+/g) : null;
    return found ? found.map(function (s) { return s.slice(4); }) : [];
  }

  function source() {
    var data = document.body && document.body["htmx-internal-data"];
    return data ? data.sseEventSource : null;
  }

  function listen(el) {
    var s = source();
    if (!s) return;
    names(el).forEach(function (name) {
      if (listening[name] === s) return;
      listening[name] = s;
      s.addEventListener(name, function () { heard[name] = performance.now(); });
    });
  }

  function bound(root) {
    var found = Array.prototype.slice.call(root.querySelectorAll("[hx-trigger*='sse:']"));
    if (root.matches && root.matches("[hx-trigger*='sse:']")) found.unshift(root);
    return found;
  }

  document.addEventListener("htmx:sseOpen", function () {
    bound(document).forEach(function (el) {
      listen(el);
      var first = names(el)[0];
      if (first) htmx.trigger(el, "sse:" + first);
    });
  });

  document.addEventListener("htmx:beforeRequest", function (e) {
    var el = e.detail.elt;
    if (el.id && names(el).length) reads[el.id] = {el: el, at: performance.now()};
  });

  document.addEventListener("htmx:load", function (e) {
    bound(e.detail.elt).forEach(function (el) {
      listen(el);
      var read = el.id ? reads[el.id] : undefined;
      if (!read || read.el === el) return; // (a read of this element itself: its answer comes later)
      delete reads[el.id];
      var missed = names(el).filter(function (name) { return heard[name] > read.at; });
      if (missed.length) htmx.trigger(el, "sse:" + missed[0]);
    });
  });
})();
