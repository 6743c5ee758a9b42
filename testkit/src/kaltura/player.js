// Kaltura Player v7 stand-in (kd-testkit), served like the real embed script at
// /p/{partnerId}/embedPlaykitJs/uiconf_id/{uiconfId}. It implements the part of the
// KalturaPlayer API an embed uses: KalturaPlayer.setup({targetId, provider: {partnerId,
// uiConfId, ks, env: {serviceUrl, cdnUrl}}, playback: {autoplay}}), player.loadMedia({entryId,
// ks}), configure({provider: {ks}}), play/pause, currentTime, playbackRate, paused,
// duration, addEventListener with the core event names, destroy. Like the real player it reads the entry through the API with
// the session, then plays the entry's playManifest URL (which checks the session again).
(function () {
  "use strict";
  var PARTNER_ID = "__PARTNER_ID__";
  var UICONF_ID = "__UICONF_ID__";
  var script = document.currentScript;
  var ORIGIN = script ? new URL(script.src).origin : location.origin;
  var EVENTS = {
    PLAY: "play", PAUSE: "pause", PLAYING: "playing", WAITING: "waiting", CAN_PLAY: "canplay",
    TIME_UPDATE: "timeupdate", SEEKING: "seeking", SEEKED: "seeked", RATE_CHANGE: "ratechange",
    ENDED: "ended", ERROR: "error", LOADED_METADATA: "loadedmetadata",
  };

  function fail(message) {
    throw new Error("KalturaPlayer: " + message);
  }

  function setup(config) {
    config = config || {};
    var provider = config.provider || {};
    if (String(provider.partnerId) !== PARTNER_ID) {
      fail("provider.partnerId " + provider.partnerId + " does not match this script's partner " + PARTNER_ID);
    }
    if (provider.uiConfId !== undefined && String(provider.uiConfId) !== UICONF_ID) {
      fail("provider.uiConfId " + provider.uiConfId + " does not match this script's uiconf " + UICONF_ID);
    }
    var target = document.getElementById(config.targetId);
    if (!target) fail("no element with id \"" + config.targetId + "\"");
    var env = provider.env || {};
    var serviceUrl = String(env.serviceUrl || ORIGIN + "/api_v3").replace(/\/+$/, "");
    if (!/\/api_v3$/.test(serviceUrl)) serviceUrl += "/api_v3";
    var cdnUrl = String(env.cdnUrl || ORIGIN).replace(/\/+$/, "");
    var video = document.createElement("video");
    video.setAttribute("playsinline", "");
    video.className = "kaltura-player-stand-in";
    video.style.width = "100%";
    video.style.height = "100%";
    target.appendChild(video);
    var autoplay = !!(config.playback && config.playback.autoplay);
    var providerKs = provider.ks || "";

    var player = {
      Event: EVENTS,
      config: config,
      /** The entry as the API returned it (after loadMedia). */
      sources: null,
      loadMedia: function (info) {
        if (!info || !info.entryId) return Promise.reject(new Error("KalturaPlayer: loadMedia needs {entryId}"));
        var ks = info.ks || providerKs;
        var body = new URLSearchParams({ format: "1", entryId: info.entryId, ks: ks, clientTag: "html5:v7-stand-in" });
        return fetch(serviceUrl + "/service/baseEntry/action/get", { method: "POST", body: body })
          .then(function (r) { return r.json(); })
          .then(function (entry) {
            if (entry && entry.objectType === "KalturaAPIException") {
              var e = new Error("KalturaPlayer: " + entry.code + ": " + entry.message);
              e.code = entry.code;
              throw e;
            }
            player.sources = entry;
            var url = cdnUrl + "/p/" + PARTNER_ID + "/sp/" + PARTNER_ID + "00/playManifest/entryId/" +
              encodeURIComponent(info.entryId) + "/format/url/protocol/" + location.protocol.replace(":", "") + "/a.wav" +
              (ks ? "?ks=" + encodeURIComponent(ks) : "");
            return new Promise(function (resolve, reject) {
              function done() {
                video.removeEventListener("loadedmetadata", done);
                video.removeEventListener("error", failed);
                if (autoplay) video.play().catch(function () {});
                resolve();
              }
              function failed() {
                video.removeEventListener("loadedmetadata", done);
                video.removeEventListener("error", failed);
                reject(new Error("KalturaPlayer: the media of " + info.entryId + " cannot be played"));
              }
              video.addEventListener("loadedmetadata", done);
              video.addEventListener("error", failed);
              video.src = url;
            });
          });
      },
      configure: function (partial) {
        // Like the real player: later requests use a new session given here.
        if (partial && partial.provider && partial.provider.ks) providerKs = partial.provider.ks;
      },
      play: function () { return video.play(); },
      pause: function () { video.pause(); },
      addEventListener: function (name, cb) { video.addEventListener(name, cb); },
      removeEventListener: function (name, cb) { video.removeEventListener(name, cb); },
      destroy: function () {
        video.pause();
        video.removeAttribute("src");
        video.remove();
      },
    };
    Object.defineProperty(player, "currentTime", {
      get: function () { return video.currentTime; },
      set: function (t) { video.currentTime = t; },
    });
    Object.defineProperty(player, "playbackRate", {
      get: function () { return video.playbackRate; },
      set: function (r) { video.playbackRate = r; },
    });
    Object.defineProperty(player, "paused", { get: function () { return video.paused; } });
    Object.defineProperty(player, "ended", { get: function () { return video.ended; } });
    Object.defineProperty(player, "duration", { get: function () { return video.duration; } });
    return player;
  }

  window.KalturaPlayer = { setup: setup, VERSION: "7-stand-in" };
})();
