// Door check-in scanner: camera -> jsQR -> SHA-256 of the code -> a decision, from the server when
// online, from the event's ticket list (kept in localStorage) when offline. Offline check-ins are
// queued with their nonce and scan time and sent when the network is back. Every text comes from the
// page (data-messages), in the organiser's language. No inline script: the page's CSP forbids it.
(function () {
  "use strict";

  var root = document.getElementById("checkin");
  if (!root) { return; }

  var eventId = root.getAttribute("data-event-id");
  var urls = {
    scan: root.getAttribute("data-scan-url"),
    undo: root.getAttribute("data-undo-url"),
    manifest: root.getAttribute("data-manifest-url"),
    stats: root.getAttribute("data-stats-url"),
    search: root.getAttribute("data-search-url")
  };
  var M = JSON.parse(root.getAttribute("data-messages"));
  var lang = document.documentElement.lang || undefined;
  var KEYS = {
    device: "checkin.device",
    manifest: "checkin.manifest." + eventId,
    queue: "checkin.queue." + eventId,
    conflicts: "checkin.conflicts." + eventId
  };
  var CACHE = "checkin-v1";
  var SAME_CODE_MS = 3000;
  var MANIFEST_EVERY_MS = 60000;
  var RETRY_EVERY_MS = 10000;
  var STATS_EVERY_MS = 20000;
  var REQUEST_TIMEOUT_MS = 8000;
  // The network often flaps when it comes back (Wi-Fi associates before it routes): wait a moment.
  var RECONNECT_DELAY_MS = 1500;

  var state = {
    manifest: null,
    byHash: {},
    byId: {},
    queue: [],
    conflicts: [],
    networkFailed: false,
    syncing: false,
    lastCode: "",
    lastCodeAt: 0,
    lastOk: null,
    stream: null,
    audio: null,
    reconnectTimer: 0,
    leaving: false
  };

  function $(id) { return document.getElementById(id); }

  function fill(template, values) {
    return String(template).replace(/\{(\w+)\}/g, function (match, key) {
      return Object.prototype.hasOwnProperty.call(values, key) ? String(values[key]) : match;
    });
  }

  // --- storage ----------------------------------------------------------------------------------

  function load(key, fallback) {
    try {
      var raw = window.localStorage.getItem(key);
      return raw ? JSON.parse(raw) : fallback;
    } catch (e) { return fallback; }
  }

  function save(key, value) {
    try { window.localStorage.setItem(key, JSON.stringify(value)); } catch (e) { /* full or disabled */ }
  }

  function deviceName() {
    try { return window.localStorage.getItem(KEYS.device) || ""; } catch (e) { return ""; }
  }

  function setManifest(manifest) {
    state.manifest = manifest;
    state.byHash = {};
    state.byId = {};
    (manifest ? manifest.tickets : []).forEach(function (entry) {
      state.byHash[entry.ticket_hash] = entry;
      state.byId[entry.registration_id] = entry;
    });
    if (manifest) { root.setAttribute("data-manifest-at", manifest.generated_at); }
    $("forget-data").hidden = !manifest;
  }

  function saveQueue() { save(KEYS.queue, state.queue); updateBanner(); }

  // --- small helpers ----------------------------------------------------------------------------

  function newNonce() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") { return window.crypto.randomUUID(); }
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join("");
  }

  function sha256Hex(text) {
    return window.crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)).then(function (buffer) {
      return Array.prototype.map.call(new Uint8Array(buffer), function (b) {
        return (b + 256).toString(16).slice(1);
      }).join("");
    });
  }

  function looksLikeToken(code) { return /^[A-Za-z0-9_-]{43}$/.test(code); }

  function formatTime(iso) {
    if (!iso) { return ""; }
    try {
      return new Intl.DateTimeFormat(lang, { timeStyle: "short", timeZone: M.zone }).format(new Date(iso));
    } catch (e) { return new Date(iso).toLocaleTimeString(); }
  }

  function countryName(code) {
    if (!code) { return ""; }
    try { return new Intl.DisplayNames([lang || "en"], { type: "region" }).of(code) || code; } catch (e) { return code; }
  }

  function fold(text) {
    return String(text).normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase();
  }

  function csrfToken() {
    var input = document.querySelector('input[name="_csrf_token"]');
    return input ? input.value : "";
  }

  function online() { return navigator.onLine && !state.networkFailed; }

  // --- the server -------------------------------------------------------------------------------

  function request(method, url, body) {
    var controller = typeof AbortController === "function" ? new AbortController() : null;
    var timer = controller ? window.setTimeout(function () { controller.abort(); }, REQUEST_TIMEOUT_MS) : 0;
    var options = {
      method: method,
      credentials: "same-origin",
      cache: "no-store",
      headers: { "Accept": "application/json", "X-CSRFToken": csrfToken() },
      signal: controller ? controller.signal : undefined
    };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return window.fetch(url, options).then(function (response) {
      window.clearTimeout(timer);
      state.networkFailed = false;
      return response.json().catch(function () { return {}; }).then(function (data) {
        return { status: response.status, data: data };
      });
    }, function (error) {
      window.clearTimeout(timer);
      state.networkFailed = true;
      updateBanner();
      throw error;
    });
  }

  // After the browser was restarted offline, the cached page's CSRF token may be stale: fetch a fresh one.
  function refreshToken() {
    return window.fetch(window.location.pathname, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) { return response.text(); })
      .then(function (html) {
        var found = /name="_csrf_token" value="([^"]+)"/.exec(html);
        if (!found) { return false; }
        document.querySelectorAll('input[name="_csrf_token"]').forEach(function (input) { input.value = found[1]; });
        return true;
      })
      .catch(function () { return false; });
  }

  function requestWithToken(method, url, body) {
    return request(method, url, body).then(function (answer) {
      if (answer.status !== 401) { return answer; }
      return refreshToken().then(function (refreshed) { return refreshed ? request(method, url, body) : answer; });
    });
  }

  function loadManifest() {
    return requestWithToken("GET", urls.manifest).then(function (answer) {
      if (answer.status === 200) {
        setManifest(answer.data);
        save(KEYS.manifest, answer.data);
        root.setAttribute("data-manifest-fresh", "1");
        precache();
        updateCounts();
      } else if (answer.status === 401) {
        showNote(M.ui.login_again);
      }
    }, function () { /* offline: keep the stored list */ });
  }

  function refreshStats() {
    if (!online()) { updateCounts(); return; }
    requestWithToken("GET", urls.stats).then(function (answer) {
      if (answer.status === 200) {
        $("count-checked-in").textContent = answer.data.checked_in;
        $("count-expected").textContent = answer.data.expected;
      }
    }, function () { updateCounts(); });
  }

  // --- deciding ---------------------------------------------------------------------------------

  function queuedFor(registrationId) {
    for (var i = 0; i < state.queue.length; i++) {
      if (state.queue[i].registration_id_local === registrationId) { return state.queue[i]; }
    }
    return null;
  }

  function personOf(entry) {
    return {
      name: entry.name,
      institution: entry.institution,
      country: entry.country,
      registration_id: entry.registration_id
    };
  }

  function withResult(answer, result, message) {
    answer.result = result;
    answer.message = message;
    return answer;
  }

  // The decision the server would take, from the list downloaded at the last sync.
  function decideLocally(entry) {
    if (!entry) {
      return { result: "invalid", message: state.manifest ? M.results.invalid : M.ui.offline_never };
    }
    var answer = personOf(entry);
    if (entry.status === "cancelled") { return withResult(answer, "cancelled", M.results.cancelled); }
    if (entry.status === "rejected") { return withResult(answer, "cancelled", M.rejected); }
    if (entry.status === "pending_approval") { return withResult(answer, "not_approved", M.results.not_approved); }
    if (entry.status === "waitlisted") { return withResult(answer, "waitlisted", M.results.waitlisted); }
    var queued = queuedFor(entry.registration_id);
    var at = queued ? queued.scanned_at : (entry.checked_in ? entry.checked_in_at : null);
    if (at) {
      var device = queued ? queued.device : (entry.checked_in_device || "");
      answer.checked_in_at = at;
      answer.device = device;
      return withResult(answer, "already_checked_in", fill(M.already, { time: formatTime(at), device: device }));
    }
    return withResult(answer, "ok", M.results.ok);
  }

  function remember(answer) {
    var entry = answer.registration_id ? state.byId[answer.registration_id] : null;
    if (!entry) { return; }
    if (answer.result === "ok" || answer.result === "already_checked_in") {
      entry.checked_in = true;
      entry.checked_in_at = answer.checked_in_at;
      entry.checked_in_device = answer.device;
      save(KEYS.manifest, state.manifest);
    }
  }

  function scanBody(scan) {
    var body = { event_id: eventId, nonce: scan.nonce, device: scan.device, scanned_at: scan.scanned_at };
    if (scan.code) { body.code = scan.code; } else { body.registration_id = scan.registration_id; }
    return body;
  }

  function decideOffline(scan, entry) {
    var answer = decideLocally(entry);
    if (answer.result === "ok") {
      scan.registration_id_local = entry.registration_id;
      scan.name = entry.name;
      state.queue.push(scan);
      saveQueue();
      answer.checked_in_at = scan.scanned_at;
      answer.device = scan.device;
      state.lastOk = { nonce: scan.nonce, registration_id: entry.registration_id, name: entry.name, offline: true };
    }
    show(answer);
    updateCounts();
  }

  // item: {code, hash} from the camera, or {registration_id} from the manual search.
  function submit(item) {
    var device = deviceName();
    if (!device) { askDevice(); showNote(M.ui.device_needed); return Promise.resolve(); }
    var scan = { nonce: newNonce(), device: device, scanned_at: new Date().toISOString() };
    if (item.code) { scan.code = item.code; } else { scan.registration_id = item.registration_id; }
    var entry = item.hash ? state.byHash[item.hash] : state.byId[item.registration_id];
    if (!online()) { decideOffline(scan, entry); return Promise.resolve(); }
    return requestWithToken("POST", urls.scan, scanBody(scan)).then(function (answer) {
      if (answer.status === 200) {
        show(answer.data);
        remember(answer.data);
        if (answer.data.result === "ok") {
          state.lastOk = { nonce: scan.nonce, registration_id: answer.data.registration_id, name: answer.data.name };
        }
        refreshStats();
      } else if (answer.status === 401) {
        showError(M.ui.login_again);
      } else if (answer.status === 429) {
        showError(M.ui.too_many);
      } else {
        showError((answer.data && answer.data.detail) || M.ui.error);
      }
    }, function () { decideOffline(scan, entry); });
  }

  function handleCode(code) {
    var now = Date.now();
    if (code === state.lastCode && now - state.lastCodeAt < SAME_CODE_MS) { return; }
    state.lastCode = code;
    state.lastCodeAt = now;
    if (!looksLikeToken(code)) { submit({ code: code, hash: "" }); return; }
    sha256Hex(code).then(function (hash) { submit({ code: code, hash: hash }); });
  }

  // --- showing ----------------------------------------------------------------------------------

  function tone(result) {
    if (result === "ok") { return "ok"; }
    return result === "already_checked_in" ? "warn" : "refused";
  }

  function paint(toneName, result, title, name, detail, message) {
    var box = $("result");
    box.className = "result result-" + toneName;
    box.setAttribute("data-result", result);
    $("result-title").textContent = title;
    $("result-name").textContent = name || "";
    $("result-detail").textContent = detail || "";
    $("result-message").textContent = message || "";
  }

  function show(answer) {
    var detail = [answer.institution, countryName(answer.country)].filter(Boolean).join(", ");
    var toneName = tone(answer.result);
    paint(toneName, answer.result, M.titles[answer.result] || "", answer.name, detail, answer.message);
    signal(toneName);
    var undo = $("undo-last");
    undo.disabled = !state.lastOk;
  }

  function showError(message) {
    paint("refused", "error", M.ui.error, "", "", message);
    signal("refused");
  }

  function showNote(message) {
    var note = $("camera-note");
    note.textContent = message;
    note.hidden = false;
  }

  function signal(toneName) {
    try {
      if (navigator.vibrate) { navigator.vibrate(toneName === "ok" ? 120 : [250, 100, 250]); }
    } catch (e) { /* not supported */ }
    beep(toneName);
  }

  function unlockAudio() {
    var AudioContextClass = window.AudioContext || window.webkitAudioContext;
    if (!AudioContextClass) { return; }
    try {
      if (!state.audio) { state.audio = new AudioContextClass(); }
      if (state.audio.state === "suspended") { state.audio.resume(); }
    } catch (e) { state.audio = null; }
  }

  function beep(toneName) {
    var context = state.audio;
    if (!context || context.state !== "running") { return; }
    var notes = toneName === "ok" ? [[880, 0, 0.15]] : [[330, 0, 0.18], [220, 0.22, 0.3]];
    notes.forEach(function (note) {
      var oscillator = context.createOscillator();
      var gain = context.createGain();
      var start = context.currentTime + note[1];
      oscillator.frequency.value = note[0];
      oscillator.type = toneName === "ok" ? "sine" : "square";
      gain.gain.setValueAtTime(0.2, start);
      gain.gain.exponentialRampToValueAtTime(0.001, start + note[2]);
      oscillator.connect(gain);
      gain.connect(context.destination);
      oscillator.start(start);
      oscillator.stop(start + note[2]);
    });
  }

  function updateBanner() {
    var banner = $("offline-banner");
    var parts = [];
    if (!online()) {
      parts.push(state.manifest
        ? fill(M.ui.offline, { time: formatTime(state.manifest.generated_at) })
        : M.ui.offline_never);
    }
    if (state.queue.length) { parts.push(fill(M.ui.queued, { count: state.queue.length })); }
    banner.textContent = parts.join(" ");
    banner.hidden = parts.length === 0;
    root.setAttribute("data-queue", String(state.queue.length));
    root.setAttribute("data-online", online() ? "1" : "0");
  }

  function updateCounts() {
    if (!state.manifest) { return; }
    var checkedIn = 0;
    state.manifest.tickets.forEach(function (entry) {
      if (entry.status === "confirmed" && (entry.checked_in || queuedFor(entry.registration_id))) { checkedIn += 1; }
    });
    $("count-checked-in").textContent = checkedIn;
    $("count-expected").textContent = state.manifest.expected;
  }

  function renderConflicts() {
    var list = $("conflict-list");
    list.textContent = "";
    state.conflicts.forEach(function (conflict) {
      var item = document.createElement("li");
      item.textContent = fill(M.ui.conflict, { name: conflict.name || "?", message: conflict.message });
      list.appendChild(item);
    });
    $("conflicts").hidden = state.conflicts.length === 0;
  }

  // --- syncing the offline queue ----------------------------------------------------------------

  function addConflict(scan, message) {
    state.conflicts.push({ name: scan.name, message: message, nonce: scan.nonce });
    save(KEYS.conflicts, state.conflicts);
    renderConflicts();
  }

  function syncNext() {
    if (!state.queue.length) { return Promise.resolve(true); }
    var scan = state.queue[0];
    return requestWithToken("POST", urls.scan, scanBody(scan)).then(function (answer) {
      if (answer.status === 401 || answer.status === 429 || answer.status >= 500) { return false; }
      state.queue.shift();
      saveQueue();
      if (answer.status !== 200) {
        addConflict(scan, (answer.data && answer.data.detail) || M.ui.error);
      } else {
        remember(answer.data);
        if (answer.data.result !== "ok") { addConflict(scan, answer.data.message); }
      }
      return syncNext();
    }, function () { return false; });
  }

  function sync() {
    if (state.syncing || !state.queue.length || !navigator.onLine) { return Promise.resolve(); }
    state.syncing = true;
    return syncNext().then(function (done) {
      state.syncing = false;
      updateBanner();
      if (done) { refreshStats(); }
    });
  }

  function reconnect() {
    if (state.leaving) { return Promise.resolve(); }
    state.networkFailed = false;
    updateBanner();
    return sync().then(loadManifest).then(refreshStats);
  }

  // --- camera -----------------------------------------------------------------------------------

  function cameraStatus(text) { $("camera-status").textContent = text; }

  function scanFrames(video) {
    var canvas = document.createElement("canvas");
    var context = canvas.getContext("2d", { willReadFrequently: true });
    function tick() {
      if (video.readyState >= 2 && video.videoWidth && typeof window.jsQR === "function") {
        var scale = Math.min(1, 800 / video.videoWidth);
        var width = Math.round(video.videoWidth * scale);
        var height = Math.round(video.videoHeight * scale);
        if (canvas.width !== width) { canvas.width = width; canvas.height = height; }
        context.drawImage(video, 0, 0, width, height);
        var found = window.jsQR(context.getImageData(0, 0, width, height).data, width, height, {
          inversionAttempts: "attemptBoth"
        });
        if (found && found.data) { handleCode(found.data.trim()); }
      }
      if (state.stream) { window.setTimeout(tick, 120); }
    }
    tick();
  }

  function startCamera() {
    unlockAudio();
    var button = $("camera-start");
    if (!window.isSecureContext) { showNote(M.ui.camera_insecure); return; }
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) { showNote(M.ui.camera_missing); return; }
    if (state.stream) { return; }
    button.hidden = true;
    cameraStatus(M.ui.starting);
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false }).then(function (stream) {
      var video = $("camera");
      state.stream = stream;
      video.srcObject = stream;
      video.muted = true;
      video.setAttribute("playsinline", "");
      return video.play().catch(function () { /* autoplay policy: frames still arrive */ }).then(function () {
        cameraStatus(M.ui.ready);
        root.setAttribute("data-camera", "on");
        scanFrames(video);
      });
    }, function (error) {
      cameraStatus(fill(M.ui.camera_failed, { error: error && (error.name || error.message) }));
      button.hidden = false;
    });
  }

  // --- device name ------------------------------------------------------------------------------

  function askDevice() {
    $("device-form").hidden = false;
    $("device-line").hidden = true;
    $("scanner").hidden = true;
    var input = $("device-name");
    input.value = deviceName();
    input.focus();
  }

  function deviceReady() {
    $("device-form").hidden = true;
    $("device-line").hidden = false;
    $("device-current").textContent = deviceName();
    $("scanner").hidden = false;
    if (!state.stream) { $("camera-start").hidden = false; }
  }

  // --- manual search ----------------------------------------------------------------------------

  function searchOffline(q) {
    var needle = fold(q);
    var found = [];
    var tickets = state.manifest ? state.manifest.tickets : [];
    for (var i = 0; i < tickets.length && found.length < 20; i++) {
      if (fold(tickets[i].name).indexOf(needle) !== -1) {
        var entry = tickets[i];
        found.push({
          registration_id: entry.registration_id,
          name: entry.name,
          institution: entry.institution,
          country: entry.country,
          status: entry.status,
          checked_in: entry.checked_in || !!queuedFor(entry.registration_id)
        });
      }
    }
    return found;
  }

  function cell(tag, text, scope) {
    var node = document.createElement(tag);
    if (scope) { node.setAttribute("scope", scope); }
    node.textContent = text;
    return node;
  }

  function renderResults(results) {
    var box = $("search-results");
    box.textContent = "";
    if (!results.length) { box.appendChild(cell("p", M.ui.no_results)); return; }
    var table = document.createElement("table");
    table.className = "data";
    var caption = cell("caption", M.ui.people_found);
    caption.className = "visually-hidden";
    table.appendChild(caption);
    var head = document.createElement("tr");
    [M.ui.col_name, M.ui.col_institution, M.ui.col_status, M.ui.col_checkin].forEach(function (label) {
      head.appendChild(cell("th", label, "col"));
    });
    table.appendChild(document.createElement("thead")).appendChild(head);
    var body = table.appendChild(document.createElement("tbody"));
    results.forEach(function (hit) {
      var row = document.createElement("tr");
      row.appendChild(cell("th", hit.name, "row"));
      row.appendChild(cell("td", [hit.institution, countryName(hit.country)].filter(Boolean).join(", ")));
      row.appendChild(cell("td", M.statuses[hit.status] || hit.status));
      var action = document.createElement("td");
      if (hit.checked_in) {
        action.textContent = M.ui.checked_in_mark;
      } else {
        var button = cell("button", fill(M.ui.check_in_name, { name: hit.name }));
        button.type = "button";
        button.className = "button";
        button.addEventListener("click", function () {
          unlockAudio();
          submit({ registration_id: hit.registration_id }).then(function () { action.textContent = M.ui.checked_in_mark; });
        });
        action.appendChild(button);
      }
      row.appendChild(action);
      body.appendChild(row);
    });
    box.appendChild(table);
  }

  function search(event) {
    event.preventDefault();
    var q = $("search-q").value.trim();
    if (q.length < 2) { renderResults([]); $("search-results").firstChild.textContent = M.ui.search_short; return; }
    if (!online()) { renderResults(searchOffline(q)); return; }
    requestWithToken("GET", urls.search + "?q=" + encodeURIComponent(q)).then(function (answer) {
      renderResults(answer.status === 200 ? answer.data.results : searchOffline(q));
    }, function () { renderResults(searchOffline(q)); });
  }

  // --- undo -------------------------------------------------------------------------------------

  function undoLast() {
    var last = state.lastOk;
    if (!last) { return; }
    var waiting = state.queue.filter(function (scan) { return scan.nonce === last.nonce; });
    if (waiting.length) {
      state.queue = state.queue.filter(function (scan) { return scan.nonce !== last.nonce; });
      saveQueue();
      state.lastOk = null;
      paint("idle", "undone", M.ui.undone_offline.replace("{name}", last.name), "", "", "");
      $("undo-last").disabled = true;
      updateCounts();
      return;
    }
    requestWithToken("POST", urls.undo, { event_id: eventId, nonce: last.nonce }).then(function (answer) {
      if (answer.status === 200) {
        state.lastOk = null;
        var entry = state.byId[answer.data.registration_id];
        if (entry) { entry.checked_in = false; entry.checked_in_at = null; save(KEYS.manifest, state.manifest); }
        paint("idle", "undone", answer.data.message, "", "", "");
        $("undo-last").disabled = true;
        refreshStats();
      } else {
        showError((answer.data && answer.data.detail) || M.ui.not_checked_in);
      }
    }, function () { showError(M.ui.error); });
  }

  // --- offline page -----------------------------------------------------------------------------

  function precache() {
    if (!("caches" in window)) { return; }
    var assets = [window.location.pathname].concat(
      Array.prototype.map.call(document.querySelectorAll('script[src], link[rel="stylesheet"]'), function (node) {
        return new URL(node.getAttribute("src") || node.getAttribute("href"), window.location.href).pathname;
      })
    );
    window.caches.open(CACHE).then(function (cache) { return cache.addAll(assets); }).catch(function () {});
  }

  function registerWorker() {
    if (!("serviceWorker" in navigator) || !window.isSecureContext) { return; }
    navigator.serviceWorker.register("/manage/checkin-sw.js", { scope: "/manage/events/" }).catch(function () {});
  }

  function forget() {
    if (state.queue.length) { showNote(M.ui.forget_blocked); return; }
    if (!window.confirm(M.ui.forget_confirm)) { return; }
    try {
      window.localStorage.removeItem(KEYS.manifest);
      window.localStorage.removeItem(KEYS.conflicts);
    } catch (e) { /* ignore */ }
    if ("caches" in window) { window.caches.delete(CACHE); }
    setManifest(null);
    state.conflicts = [];
    renderConflicts();
    showNote(M.ui.forgotten);
  }

  // --- start ------------------------------------------------------------------------------------

  function start() {
    setManifest(load(KEYS.manifest, null));
    state.queue = load(KEYS.queue, []);
    state.conflicts = load(KEYS.conflicts, []);
    renderConflicts();
    updateBanner();
    if (!window.isSecureContext) { showNote(M.ui.camera_insecure); }
    $("undo-last").hidden = false;

    $("device-form").addEventListener("submit", function (event) {
      event.preventDefault();
      var name = $("device-name").value.replace(/\s+/g, " ").trim().slice(0, 120);
      if (!name) { return; }
      try { window.localStorage.setItem(KEYS.device, name); } catch (e) { /* ignore */ }
      deviceReady();
      startCamera();
    });
    $("device-change").addEventListener("click", askDevice);
    $("camera-start").addEventListener("click", startCamera);
    $("undo-last").addEventListener("click", undoLast);
    $("search-form").addEventListener("submit", search);
    $("forget-data").addEventListener("click", forget);
    $("conflicts-clear").addEventListener("click", function () {
      state.conflicts = [];
      save(KEYS.conflicts, state.conflicts);
      renderConflicts();
    });
    document.addEventListener("click", unlockAudio, { once: true });

    window.addEventListener("online", function () {
      window.clearTimeout(state.reconnectTimer);
      state.reconnectTimer = window.setTimeout(reconnect, RECONNECT_DELAY_MS);
    });
    window.addEventListener("pagehide", function () {
      state.leaving = true;
      window.clearTimeout(state.reconnectTimer);
    });
    window.addEventListener("offline", updateBanner);
    window.setInterval(function () { if (navigator.onLine) { sync().then(loadManifest); } }, MANIFEST_EVERY_MS);
    window.setInterval(function () { if (navigator.onLine && (state.queue.length || state.networkFailed)) { reconnect(); } }, RETRY_EVERY_MS);
    window.setInterval(refreshStats, STATS_EVERY_MS);

    if (deviceName()) { deviceReady(); } else { askDevice(); }
    registerWorker();
    if (navigator.onLine) { sync().then(loadManifest); } else { updateCounts(); }
  }

  start();
})();
