// The queue page's keyboard and lease behaviour (a static file: the CSP forbids inline scripts).
// Keys: a label's shortcut submits it; Enter accepts the suggestion; y keeps the given label;
// n/a toggle the flags; c focuses the comment (Escape leaves it); s skips; u undoes;
// g guidelines; ? help. On a review card (data-card-kind="review") x opens the exclusion's
// reason (Enter there excludes, Escape cancels), m toggles "apply to the group", and Enter with
// Ambiguous ticked saves the case as ambiguous. Keys typed in text fields never trigger
// shortcuts. The page pings the server every 60 s while visible so held cases stay theirs.
// One answer per card: a held key's auto-repeats are ignored, keys act only on a card htmx has
// finished with (before that a click would be a plain form post), and a second submit of the
// same card is dropped rather than posted as a full page. A u pressed before the card an answer
// brings is shown is not dropped: it undoes that answer once the card is shown (once it is
// recorded; u during an undo on its way is dropped as before).
(function () {
  "use strict";
  var PING_MS = 60000;
  var renderedAt = Date.now();
  var lastSubmission = null;
  var answered = null; // the submission id of the card whose answer is on its way
  var sentUndo = false; // whether the last post htmx sent is an undo (else an answer)
  var undoBase = null; // the action the undo named when that answer was sent
  var undoWaiting = false; // u pressed before the card the answer brings was shown
  var lastPing = Date.now();

  function csrfToken() {
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }
  function card() { return document.getElementById("queue-card"); }
  function inCard(selector) { var c = card(); return c ? c.querySelector(selector) : null; }
  function isTyping(el) {
    if (!el || !el.tagName) return false;
    var tag = el.tagName;
    if (tag === "TEXTAREA" || tag === "SELECT" || el.isContentEditable) return true;
    if (tag !== "INPUT") return false;
    return ["checkbox", "radio", "button", "submit", "reset"].indexOf(el.type) < 0;
  }
  function fillDuration() {
    var field = inCard("#duration-ms");
    if (field) field.value = String(Math.max(0, Date.now() - renderedAt));
  }
  function submissionOf(el) {
    var c = el && el.closest ? el.closest("#queue-card") : null;
    return c ? c.dataset.submission || null : null;
  }
  // Not yet shown as the current card (htmx still settling it) or already answered.
  function waiting(el) {
    var id = submissionOf(el);
    return id !== null && (id !== lastSubmission || id === answered);
  }
  function press(button) {
    if (!button || button.disabled) return false;
    if (waiting(button)) return true;
    fillDuration();
    button.click();
    return true;
  }
  function toggle(box) {
    if (!box) return false;
    box.checked = !box.checked;
    return true;
  }
  function checked(selector) { var box = inCard(selector); return !!(box && box.checked); }
  function cardKind() { var c = card(); return (c && c.dataset.cardKind) || "label"; }
  function openExclusion() {
    var panel = inCard("#exclude");
    var reason = inCard("#exclude-reason");
    if (!panel || !reason) return false;
    panel.open = true;
    reason.focus();
    return true;
  }
  function closeExclusion() {
    var panel = inCard("#exclude");
    if (!panel || !panel.open) return false;
    panel.open = false;
    return true;
  }
  function helpBox() { return document.getElementById("help"); }
  function setHelp(open) {
    var help = helpBox();
    if (!help) return;
    if (open) {
      // The help lists the keys of the card shown (the card swaps; the help does not).
      var kind = cardKind();
      help.querySelectorAll("[data-keys-for]").forEach(function (part) {
        part.hidden = part.getAttribute("data-keys-for") !== kind;
      });
    }
    help.hidden = !open;
    if (open) {
      var close = document.getElementById("help-close");
      if (close) close.focus();
    } else {
      focusCase();
    }
  }
  function toggleGuidelines() {
    var panel = document.getElementById("guidelines");
    if (!panel) return false;
    panel.open = !panel.open;
    return true;
  }
  function focusCase() {
    var title = inCard("#case-title");
    if (title) title.focus({ preventScroll: false });
  }
  function undoAction() {
    var field = inCard('form.undo input[name="action_id"]');
    return field ? field.value : "";
  }
  function undo() {
    var button = inCard('button[data-key="u"]');
    if (!button) return false;
    if (!waiting(button)) return press(button);
    // The answer on its way is the last action: undo it on the card it brings, once shown.
    if (!sentUndo) undoWaiting = true;
    return true;
  }
  function ping() {
    var c = card();
    if (!c || !c.dataset.pingUrl) return;
    lastPing = Date.now();
    fetch(c.dataset.pingUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken() }
    }).catch(function () { /* offline: the next ping or submit renews */ });
  }
  function onCardShown() {
    var c = card();
    var id = c ? c.dataset.submission || null : null;
    if (id !== lastSubmission) {
      lastSubmission = id;
      // Keys answer this card from now on (htmx focuses the new #case-title before it settles,
      // and a key pressed in between is dropped); scripts and tests can wait for this.
      if (c) c.dataset.shown = "1";
      renderedAt = Date.now();
      focusCase();
    }
    if (undoWaiting && c && !waiting(c)) {
      undoWaiting = false;
      // Only if the answer was recorded (a refused one leaves an older action to undo).
      if (undoAction() !== undoBase) press(inCard('button[data-key="u"]'));
    }
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || event.isComposing) return;
    var target = event.target;
    var key = event.key;
    if (event.repeat && !isTyping(target)) {
      // A held key answers once: its repeats would answer cases the analyst never saw.
      event.preventDefault();
      return;
    }
    if (isTyping(target)) {
      var exclusion = inCard("#exclude");
      var inExclusion = exclusion && exclusion.contains(target);
      if (key === "Escape") {
        if (inExclusion) closeExclusion();
        target.blur(); focusCase(); event.preventDefault();
      } else if (key === "Enter" && inExclusion) {
        // Submits the exclusion (the browser asks for a reason first), never the form's
        // first button, which a plain Enter in a text field would press.
        press(inCard("[data-exclude-submit]"));
        event.preventDefault();
      }
      return;
    }
    var help = helpBox();
    if (help && !help.hidden) {
      if (key === "Escape" || key === "?") { setHelp(false); event.preventDefault(); }
      return;
    }
    if (!card()) return;
    var handled = false;
    if (key === "Enter") {
      if (target && (target.tagName === "BUTTON" || target.tagName === "A" || target.tagName === "SUMMARY")) return;
      var ambiguousVerdict = inCard("[data-ambiguous]");
      if (ambiguousVerdict && checked("#ambiguous")) {
        handled = press(ambiguousVerdict);
      } else {
        var flagged = checked("#noise-flag") || checked("#ambiguous");
        handled = press(inCard("[data-accept]")) || (flagged && press(inCard("[data-flags-only]")));
      }
    } else if (key === "x") {
      handled = openExclusion();
    } else if (key === "m") {
      handled = toggle(inCard("#apply-group"));
    } else if (key === "n") {
      handled = toggle(inCard("#noise-flag"));
    } else if (key === "a") {
      handled = toggle(inCard("#ambiguous"));
    } else if (key === "c") {
      var comment = inCard("#comment");
      if (comment) { comment.focus(); handled = true; }
    } else if (key === "u") {
      handled = undo();
    } else if (key === "g") {
      handled = toggleGuidelines();
    } else if (key === "?") {
      setHelp(true);
      handled = true;
    } else if (key === "Escape") {
      var panel = document.getElementById("guidelines");
      handled = closeExclusion();
      if (!handled && panel && panel.open) { panel.open = false; handled = true; }
    } else if (/^[0-9a-z]$/.test(key)) {
      handled = press(inCard('button[data-key="' + key + '"]'));
    }
    if (handled) {
      event.preventDefault();
      if (Date.now() - lastPing > PING_MS / 2) ping();
    }
  });

  // Mouse and no-shortcut submits get their duration too.
  document.addEventListener("click", function (event) {
    var button = event.target && event.target.closest ? event.target.closest("button[type=submit]") : null;
    if (button && card() && card().contains(button)) fillDuration();
  }, true);
  // The first submit of a card goes (htmx or, without it, the browser posts it); any later
  // one for the same card is stopped before htmx or the browser sees it.
  document.addEventListener("submit", function (event) {
    var id = submissionOf(event.target);
    if (id !== null) {
      if (id === answered) {
        event.preventDefault();
        event.stopImmediatePropagation();
        return;
      }
      answered = id;
    }
    fillDuration();
  }, true);
  // Buttons htmx posts on click (skip) send no submit event; an invalid form sends nothing.
  document.addEventListener("htmx:beforeRequest", function (event) {
    var config = event.detail && event.detail.requestConfig;
    if (config && config.verb === "get") return; // the empty card's poll: no answer, no undo
    var elt = event.detail && event.detail.elt;
    var id = submissionOf(elt);
    if (id !== null) answered = id;
    sentUndo = !!(elt && elt.closest && elt.closest("form.undo"));
    if (!sentUndo) undoBase = undoAction();
  });
  // A request that failed leaves the card in place: let it be answered again. A 503 (the
  // database restarting) or no answer at all also says so above the card, in the server's
  // words for a 503; the next card swapped in replaces the notice.
  function retryable() { answered = null; undoWaiting = false; }
  function notice(text) {
    var c = card();
    if (!c) return;
    var p = document.getElementById("service-unavailable");
    if (!p) {
      p = document.createElement("p");
      p.id = "service-unavailable";
      p.className = "notice bad";
      p.setAttribute("role", "alert");
      c.insertBefore(p, c.firstChild);
    }
    p.textContent = text;
  }
  document.addEventListener("htmx:responseError", function (event) {
    retryable();
    var xhr = event.detail && event.detail.xhr;
    if (!xhr || xhr.status !== 503) return;
    var parsed = new DOMParser().parseFromString(xhr.responseText || "", "text/html");
    var text = parsed.body ? parsed.body.textContent.trim() : "";
    notice(text || "The service is unavailable for a moment: try again in a few seconds.");
  });
  document.addEventListener("htmx:sendError", function () {
    retryable();
    notice("The server did not answer; your answer was not saved. Try again in a few seconds.");
  });

  document.addEventListener("htmx:afterSettle", onCardShown);
  document.addEventListener("DOMContentLoaded", function () {
    onCardShown();
    var open = document.getElementById("help-open");
    var close = document.getElementById("help-close");
    if (open) open.addEventListener("click", function () { setHelp(true); });
    if (close) close.addEventListener("click", function () { setHelp(false); });
  });
  setInterval(function () {
    if (document.visibilityState === "visible") ping();
  }, PING_MS);
})();
