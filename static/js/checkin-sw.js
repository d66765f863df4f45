// Keeps the door scanner page and its files for a reload without network. Served as
// /manage/checkin-sw.js (scope /manage/events/). Network first: the cached copy is used only offline.
"use strict";

var CACHE = "checkin-v1";
var PAGE = /^\/manage\/events\/[0-9a-fA-F-]{36}\/checkin$/;
var ASSET = /^\/static\/(js\/checkin\.js|js\/localtime\.js|vendor\/jsqr\/jsQR\.js|css\/site\.css|css\/checkin\.css)$/;

self.addEventListener("install", function () { self.skipWaiting(); });
self.addEventListener("activate", function (event) { event.waitUntil(self.clients.claim()); });

self.addEventListener("fetch", function (event) {
  var request = event.request;
  if (request.method !== "GET") { return; }
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) { return; }
  var isPage = PAGE.test(url.pathname) && !url.search;
  if (!isPage && !ASSET.test(url.pathname)) { return; }
  event.respondWith(
    fetch(request).then(function (response) {
      if (response.ok && !response.redirected && response.type === "basic") {
        var copy = response.clone();
        caches.open(CACHE).then(function (cache) { return cache.put(url.pathname, copy); });
      }
      return response;
    }).catch(function () {
      return caches.match(url.pathname).then(function (cached) { return cached || Response.error(); });
    })
  );
});
