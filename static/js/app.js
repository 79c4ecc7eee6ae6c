// Site-wide behaviour, loaded from a static file so the CSP can forbid inline scripts.
// Sends Django's CSRF token with every htmx request (the cookie is readable by design).
(function () {
  "use strict";
  function csrfToken() {
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }
  document.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRFToken"] = csrfToken();
    // A search's URL goes to the history (a bookmark): it names only the fields filled in.
    var form = event.detail.elt;
    if (event.detail.verb === "get" && form.matches && form.matches("form[role=search]")) {
      var data = event.detail.formData;
      Array.from(data.keys()).forEach(function (key) {
        if (data.getAll(key).every(function (value) { return value === ""; })) {
          data.delete(key);
        }
      });
    }
  });
  // A page of search results swapped in by a link that went with the old results: keyboard
  // focus would fall back to the top of the page, so it goes to the new results' summary.
  document.addEventListener("htmx:afterSettle", function () {
    var summary = document.getElementById("search-summary");
    var active = document.activeElement;
    if (summary && (!active || active === document.body || !active.isConnected)) {
      summary.focus();
    }
  });
})();
