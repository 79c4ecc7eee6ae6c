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
  });
})();
