// A running job's page follows its events: its progress and previews; at its end the page is reloaded, so that
// what it shows then is what the server renders.
"use strict";
(function () {
  var section = document.getElementById("job");
  if (!section || !window.EventSource) { return; }
  var status = document.getElementById("status");
  var bar = document.getElementById("progress");
  var preview = document.getElementById("preview");
  var events = new EventSource("/web/jobs/" + section.dataset.job + "/events");
  function ended() { events.close(); window.location.reload(); }
  events.addEventListener("progress", function (event) {
    var percent = Math.round(JSON.parse(event.data).progress * 100);
    bar.value = percent;
    status.textContent = status.dataset.progress.replace("{percent}", percent);
    section.dataset.state = "running";
  });
  events.addEventListener("started", function () { section.dataset.state = "running"; });
  events.addEventListener("preview", function (event) {
    preview.src = JSON.parse(event.data).image;
    preview.hidden = false;
  });
  events.addEventListener("state", function (event) {
    var job = JSON.parse(event.data);
    if (["done", "failed", "cancelled"].indexOf(job.state) >= 0) { ended(); }
  });
  ["done", "failed", "cancelled"].forEach(function (name) { events.addEventListener(name, ended); });
})();
