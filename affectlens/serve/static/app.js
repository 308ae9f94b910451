// The affectlens page: photo, video and live camera against this server's /v1 API.
// Plain JavaScript, no build step and no outside requests, so the page works offline.
//
// One result per request: every photo or video request carries a sequence number and an
// AbortController; a newer request aborts the older one, and an answer that arrives for anything
// but the newest request is dropped. Every result says which model made it.

const $ = (id) => document.getElementById(id);

// The same colours as the annotated images and videos (affectlens/inference/annotate.py), as RGB.
const NAMED_COLOURS = {
  angry: [220, 40, 40], anger: [220, 40, 40], disgust: [40, 140, 40], fear: [160, 60, 160],
  happy: [60, 200, 60], happiness: [60, 200, 60], sad: [40, 120, 200], sadness: [40, 120, 200],
  surprise: [240, 200, 0], neutral: [150, 150, 150], contempt: [200, 80, 120],
};
const PALETTE = [[60, 160, 230], [230, 160, 60], [60, 230, 160], [160, 60, 200], [200, 230, 60], [240, 140, 140]];

function rgbOf(label, index) {
  return NAMED_COLOURS[label.toLowerCase()] || PALETTE[index % PALETTE.length];
}

function colour(label, index) {
  return `rgb(${rgbOf(label, index).join(",")})`;
}

// WCAG 2 relative luminance and contrast ratio.
function luminance([r, g, b]) {
  const linear = (c) => { const v = c / 255; return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  return 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
}

function contrast(a, b) {
  const [la, lb] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (la + 0.05) / (lb + 0.05);
}

// A label's background and text colours with at least AA contrast (4.5:1): the emotion's colour with
// black or white text, whichever reads better, darkened step by step when neither reaches 4.5.
function labelColours(rgb) {
  let background = rgb.slice();
  for (let step = 0; step < 20; step += 1) {
    if (contrast(background, [0, 0, 0]) >= 4.5) return { background, text: [0, 0, 0] };
    if (contrast(background, [255, 255, 255]) >= 4.5) return { background, text: [255, 255, 255] };
    background = background.map((c) => Math.round(c * 0.85));
  }
  return { background: [0, 0, 0], text: [255, 255, 255] };
}

function setStatus(element, text, isError = false) {
  element.textContent = text;
  element.classList.toggle("error", isError);
}

// ------------------------------------------------------------------------------------- errors
// The server's messages are written for API clients (they name endpoints and parameters); the page
// says the same in plain words, without endpoints or HTTP status codes.
class PlainError extends Error {}

function plainWords(message) {
  return message
    .replace(/;?\s*send photos to \/v1\/predict\b/, "; choose it on the Photo tab")
    .replace(/;?\s*send videos to \/v1\/predict\/video\b/, "; choose it on the Video tab")
    .replace(/\(every=(\d+)\)/g, "(analyse every $1th frame)")
    .replace(/\bevery=N\b/g, "a larger “Analyse every” value")
    .replace(/\/v1\/[\w/.-]*/g, "the server")
    .replace(/\s*\(HTTP \d+\)/g, "");
}

async function errorText(response) {
  let message = "";
  try {
    const body = await response.json();
    if (body && typeof body.error === "string") message = body.error;
  } catch (_) { /* not JSON */ }
  if (response.status === 503) return "The server is busy right now. Please try again in a moment.";
  if (response.status >= 500 && response.status !== 504) return "Something went wrong on the server. Please try again.";
  return message ? plainWords(message) : "The server could not handle this file.";
}

function describeFailure(error) {
  if (error instanceof PlainError) return error.message;
  if (error instanceof TypeError) return "Could not reach the server. Is it still running?";
  return plainWords(String(error.message || error));
}

// ------------------------------------------------------------------------------------- models
const state = { model: "", classes: [] };

async function loadModels() {
  const select = $("model");
  try {
    const response = await fetch("/v1/models");
    if (!response.ok) throw new PlainError(await errorText(response));
    const listing = await response.json();
    for (const model of listing.models) {
      const option = new Option(model.name, model.name, model.default, model.default);
      option.dataset.info = `${model.architecture}, ${model.classes.length} classes` +
        (model.valence_arousal ? ", valence/arousal" : "") + (model.description ? ` — ${model.description}` : "");
      select.append(option);
    }
    const showInfo = () => {
      state.model = select.value;
      $("model-info").textContent = select.selectedOptions[0]?.dataset.info || "";
    };
    select.addEventListener("change", () => {
      showInfo();
      restartCamera();
      if (photo.file) analysePhoto(photo.file);  // the shown result must be the chosen model's
    });
    showInfo();
  } catch (error) {
    $("model-info").textContent = `The list of models could not be loaded. ${describeFailure(error)}`;
    $("model-about").open = true;
  }
}

function withModel(path, params = {}, model = state.model) {
  const query = new URLSearchParams(params);
  if (model) query.set("model", model);
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

// On a wide screen the model's details are open; on a phone they stay behind "About this model".
const wide = window.matchMedia("(min-width: 700px)");
$("model-about").open = wide.matches;

// ---------------------------------------------------------------------------------------- tabs
// The WAI-ARIA tabs pattern: one tab in the Tab order (roving tabindex), arrows, Home and End move
// between tabs and show the tab they land on.
const TABS = ["photo", "video", "camera"];

function showTab(name, focus = false) {
  for (const tab of TABS) {
    const button = $(`tab-${tab}`);
    button.setAttribute("aria-selected", String(tab === name));
    button.tabIndex = tab === name ? 0 : -1;
    $(`${tab}-panel`).hidden = tab !== name;
  }
  if (focus) $(`tab-${name}`).focus();
  if (name !== "camera") stopCamera();
}

function onTabKey(event) {
  const current = TABS.indexOf(event.target.id.replace("tab-", ""));
  if (current < 0) return;
  const next = { ArrowRight: current + 1, ArrowLeft: current - 1, Home: 0, End: TABS.length - 1 }[event.key];
  if (next === undefined) return;
  event.preventDefault();
  showTab(TABS[(next + TABS.length) % TABS.length], true);
}

// ------------------------------------------------------------------------------- faces drawing
// The camera canvas: labels sized in screen pixels (the canvas is scaled to fit the page).
function drawFaces(context, faces, scaleX = 1, scaleY = 1) {
  const canvas = context.canvas;
  const perCssPixel = canvas.width / Math.max(1, canvas.clientWidth || canvas.width);
  const line = Math.max(2, Math.round(2 * perCssPixel));
  const fontPx = Math.round(14 * perCssPixel);
  context.font = `600 ${fontPx}px system-ui, sans-serif`;
  context.textBaseline = "bottom";
  faces.forEach((face, index) => {
    const [x1, y1, x2, y2] = face.box;
    const x = x1 * scaleX, y = y1 * scaleY, w = (x2 - x1) * scaleX, h = (y2 - y1) * scaleY;
    const classIndex = Object.keys(face.probabilities).indexOf(face.label);
    const rgb = rgbOf(face.label, classIndex < 0 ? index : classIndex);
    const colours = labelColours(rgb);
    context.lineWidth = line;
    context.strokeStyle = `rgb(${rgb.join(",")})`;
    context.strokeRect(x, y, w, h);
    const text = labelText(face);
    const textWidth = context.measureText(text).width;
    const textHeight = fontPx + Math.round(6 * perCssPixel);
    const top = y - textHeight >= 0 ? y : y + h + textHeight;
    context.fillStyle = `rgb(${colours.background.join(",")})`;
    context.fillRect(x, top - textHeight, textWidth + 8 * perCssPixel, textHeight);
    context.fillStyle = `rgb(${colours.text.join(",")})`;
    context.fillText(text, x + 4 * perCssPixel, top - 3 * perCssPixel);
  });
}

function labelText(face) {
  return `#${face.face_id} ${face.label} ${Math.round(100 * face.probabilities[face.label])}%`;
}

function faceCard(face, index) {
  const item = document.createElement("li");
  item.className = "face-result";
  item.dataset.faceId = String(face.face_id);
  const names = Object.keys(face.probabilities);
  const labelIndex = names.indexOf(face.label);
  item.style.setProperty("--face-colour", colour(face.label, labelIndex < 0 ? index : labelIndex));
  const title = document.createElement("h3");
  let heading = `#${face.face_id} ${face.label} ${(100 * face.probabilities[face.label]).toFixed(0)}%`;
  if (face.valence !== undefined && face.arousal !== undefined) {
    heading += ` · valence ${face.valence.toFixed(2)} · arousal ${face.arousal.toFixed(2)}`;
  }
  title.textContent = heading;
  item.append(title);
  names.forEach((name, k) => {
    const p = face.probabilities[name];
    const row = document.createElement("div");
    row.className = "bar-row";
    const label = document.createElement("span");
    label.textContent = name;
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.setAttribute("role", "meter");
    bar.setAttribute("aria-label", name);
    bar.setAttribute("aria-valuemin", "0");
    bar.setAttribute("aria-valuemax", "1");
    bar.setAttribute("aria-valuenow", String(p));
    const fill = document.createElement("span");
    fill.style.width = `${(100 * p).toFixed(1)}%`;
    fill.style.background = colour(name, k);
    bar.append(fill);
    const value = document.createElement("span");
    value.className = "value";
    value.textContent = `${(100 * p).toFixed(1)}%`;
    row.append(label, bar, value);
    item.append(row);
  });
  return item;
}

function showFaceCards(list, faces) {
  list.replaceChildren(...faces.map(faceCard));
}

// --------------------------------------------------------------------------------- photo overlay
// Boxes are HTML elements over the photo, placed in percent of the analysed image, so they scale
// with it; labels keep a readable size in screen pixels and are placed so that none covers another.
function buildOverlay(overlay, record) {
  overlay.replaceChildren();
  record.faces.forEach((face, index) => {
    const [x1, y1, x2, y2] = face.box;
    const classIndex = Object.keys(face.probabilities).indexOf(face.label);
    const rgb = rgbOf(face.label, classIndex < 0 ? index : classIndex);
    const box = document.createElement("div");
    box.className = "face-box";
    box.style.left = `${(100 * x1) / record.width}%`;
    box.style.top = `${(100 * y1) / record.height}%`;
    box.style.width = `${(100 * (x2 - x1)) / record.width}%`;
    box.style.height = `${(100 * (y2 - y1)) / record.height}%`;
    box.style.borderColor = `rgb(${rgb.join(",")})`;
    const label = document.createElement("div");
    label.className = "face-label";
    label.textContent = labelText(face);
    const colours = labelColours(rgb);
    label.style.background = `rgb(${colours.background.join(",")})`;
    label.style.color = `rgb(${colours.text.join(",")})`;
    label.dataset.faceId = String(face.face_id);
    overlay.append(box, label);
  });
  layoutLabels(overlay);
}

function overlapping(a, b) {
  return a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
}

function layoutLabels(overlay) {
  const width = overlay.clientWidth, height = overlay.clientHeight;
  if (!width || !height) return;
  const boxes = [...overlay.querySelectorAll(".face-box")];
  const labels = [...overlay.querySelectorAll(".face-label")];
  const faceRects = boxes.map((box) => ({ left: box.offsetLeft, top: box.offsetTop,
    right: box.offsetLeft + box.offsetWidth, bottom: box.offsetTop + box.offsetHeight }));
  const placed = [];
  labels.forEach((label, index) => {
    const w = label.offsetWidth, h = label.offsetHeight;
    const face = faceRects[index];
    const left = Math.max(0, Math.min(face.left, width - w));
    const rectAt = (top) => ({ left, top, right: left + w, bottom: top + h });
    const fits = (top) => top >= 0 && top + h <= height;
    const free = (rect, others) => !others.some((other) => overlapping(rect, other));
    const otherFaces = faceRects.filter((_, k) => k !== index);
    const candidates = [face.top - h, face.bottom, face.top].filter(fits);
    let chosen = null;
    for (const avoid of [[...placed, ...otherFaces], placed]) {
      chosen = candidates.map(rectAt).find((rect) => free(rect, avoid));
      if (chosen) break;
    }
    if (!chosen) {  // every usual place is taken: the nearest free row, searching outwards
      const start = candidates.length ? candidates[0] : Math.max(0, Math.min(face.top, height - h));
      for (let d = 0; d <= height && !chosen; d += 2) {
        for (const top of [start - d, start + d]) {
          if (fits(top) && free(rectAt(top), placed)) { chosen = rectAt(top); break; }
        }
      }
      chosen = chosen || rectAt(Math.max(0, Math.min(start, height - h)));
    }
    label.style.left = `${chosen.left}px`;
    label.style.top = `${chosen.top}px`;
    placed.push(chosen);
  });
}

// --------------------------------------------------------------------------------------- photo
const photo = { seq: 0, controller: null, file: null, url: null };

function clearPhoto() {
  $("photo-figure").hidden = true;
  $("photo-overlay").replaceChildren();
  $("photo-faces").replaceChildren();
  $("photo-image").removeAttribute("src");
  if (photo.url) URL.revokeObjectURL(photo.url);
  photo.url = null;
}

// An object URL of the upload when this browser can draw it, else null (TIFF, PGM, ...).
async function drawableUrl(file) {
  const url = URL.createObjectURL(file);
  try {
    const probe = new Image();
    probe.src = url;
    await probe.decode();
    return url;
  } catch (_) {
    URL.revokeObjectURL(url);
    return null;
  }
}

async function analysePhoto(file) {
  const seq = ++photo.seq;
  photo.controller?.abort();
  const controller = new AbortController();
  photo.controller = controller;
  photo.file = file;
  const model = state.model;
  const status = $("photo-status");
  clearPhoto();
  setStatus(status, `Analysing ${file.name} with the ${model || "default"} model…`);
  const started = performance.now();
  try {
    const localUrl = await drawableUrl(file);
    if (seq !== photo.seq) { if (localUrl) URL.revokeObjectURL(localUrl); return; }
    photo.url = localUrl;
    const body = new FormData();
    body.append("file", file, file.name);
    const response = await fetch(withModel("/v1/predict", localUrl ? {} : { preview: "true" }, model),
      { method: "POST", body, signal: controller.signal });
    if (seq !== photo.seq) return;
    if (!response.ok) throw new PlainError(await errorText(response));
    const record = await response.json();
    if (seq !== photo.seq) return;
    const madeBy = response.headers.get("X-Affectlens-Model") || model;
    const image = $("photo-image");
    image.src = record.preview || localUrl;
    image.alt = `${file.name}, with a box and label per face`;
    await image.decode();
    if (seq !== photo.seq) return;
    const figure = $("photo-figure");
    figure.dataset.model = madeBy;
    figure.dataset.file = file.name;
    figure.hidden = false;
    buildOverlay($("photo-overlay"), record);
    showFaceCards($("photo-faces"), record.faces);
    const count = `${record.faces.length} face${record.faces.length === 1 ? "" : "s"}`;
    $("photo-caption").textContent = `${file.name} · ${count} · model ${madeBy}`;
    const seconds = ((performance.now() - started) / 1000).toFixed(2);
    const notice = response.headers.get("X-Affectlens-Notice");
    setStatus(status, `${count} in ${file.name} (${record.width}×${record.height}, model ${madeBy}, ${seconds} s)` +
      (notice ? ` — ${notice}` : ""));
  } catch (error) {
    if (seq !== photo.seq || error.name === "AbortError") return;
    clearPhoto();
    setStatus(status, `${file.name}: ${describeFailure(error).replace(`${file.name}: `, "")}`, true);
  }
}

// --------------------------------------------------------------------------------------- video
// A video is a job on the server: created by the upload, polled for its progress and time left,
// cancelled with the Cancel button (or by choosing another video), and its files fetched when done.
const video = { seq: 0, controller: null, jobId: null };
const POLL_MS = 400;

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => { clearTimeout(timer); reject(new DOMException("aborted", "AbortError")); },
      { once: true });
  });
}

function forgetVideoJob() {
  if (video.jobId) fetch(`/v1/video-jobs/${video.jobId}`, { method: "DELETE", keepalive: true }).catch(() => {});
  video.jobId = null;
}

function clearVideo() {
  $("video-result").hidden = true;
  const player = $("video-player");
  player.pause();
  player.removeAttribute("src");
  player.load();
  const timeline = $("video-timeline");
  timeline.hidden = true;
  timeline.removeAttribute("src");
  $("video-summary").textContent = "";
  for (const id of ["download-csv", "download-jsonl"]) $(id).removeAttribute("href");
}

function showProgress(visible, text = "", value = null) {
  $("video-progress").hidden = !visible;
  const bar = $("video-progress-bar");
  if (value === null) bar.removeAttribute("value"); else bar.value = value;
  bar.setAttribute("aria-valuetext", text);
  $("video-progress-text").textContent = text;
}

function progressText(job) {
  if (job.state === "queued" || job.frames_total === null) return `${job.file}: waiting for the server…`;
  const percent = Math.round(100 * (job.progress || 0));
  const left = job.eta_s === null ? "" : job.eta_s >= 1 ? `, about ${Math.ceil(job.eta_s)} s left` : ", finishing";
  return `${job.file}: ${job.frames_done} of ${job.frames_total} frames (${percent}%)${left}`;
}

function cancelVideo() {
  video.seq += 1;
  video.controller?.abort();
  forgetVideoJob();
  showProgress(false);
  setStatus($("video-status"), "Cancelled.");
}

async function analyseVideo(file) {
  const seq = ++video.seq;
  video.controller?.abort();
  forgetVideoJob();
  const controller = new AbortController();
  video.controller = controller;
  const { signal } = controller;
  const status = $("video-status");
  const every = Math.max(1, parseInt($("video-every").value, 10) || 1);
  const model = state.model;
  const started = performance.now();
  clearVideo();
  setStatus(status, `Uploading ${file.name}…`);
  showProgress(true, `Uploading ${file.name}…`);
  const body = new FormData();
  body.append("file", file, file.name);
  try {
    const created = await fetch(withModel("/v1/video-jobs", { annotate: "true", every: String(every) }, model),
      { method: "POST", body, signal });
    if (!created.ok) throw new PlainError(await errorText(created));
    let job = await created.json();
    video.jobId = job.id;
    setStatus(status, `Analysing ${file.name} with the ${job.model} model…`);
    while (job.state !== "done") {
      showProgress(true, progressText(job), job.progress);
      await sleep(POLL_MS, signal);
      const polled = await fetch(`/v1/video-jobs/${job.id}`, { signal });
      if (!polled.ok) throw new PlainError(await errorText(polled));
      job = await polled.json();
      if (job.state === "failed") throw new PlainError(plainWords(job.error || "The analysis failed."));
      if (job.state === "cancelled") throw new DOMException("cancelled", "AbortError");
    }
    showProgress(true, `${file.name}: preparing the result…`, 1);
    const fetched = await fetch(`/v1/video-jobs/${job.id}/result`, { signal });
    if (!fetched.ok) throw new PlainError(await errorText(fetched));
    const answer = await fetched.json();
    if (seq !== video.seq) return;
    showVideoResult(file, answer);
    showProgress(false);
    setStatus(status, `${answer.frames_analysed} frames analysed, ${answer.tracks.length} face track(s), ` +
      `model ${answer.model}, ${((performance.now() - started) / 1000).toFixed(1)} s`);
  } catch (error) {
    if (seq !== video.seq || error.name === "AbortError") return;
    showProgress(false);
    clearVideo();
    setStatus(status, `${file.name}: ${describeFailure(error).replace(`${file.name}: `, "")}`, true);
  }
}

function showVideoResult(file, answer) {
  const player = $("video-player");
  player.hidden = !answer.annotated_video_url;
  if (answer.annotated_video_url) player.src = answer.annotated_video_url;
  const timeline = $("video-timeline");
  timeline.hidden = !answer.timeline_url;
  if (answer.timeline_url) timeline.src = answer.timeline_url;
  const base = file.name.replace(/\.[^.]+$/, "");
  $("download-csv").href = answer.csv_url;
  $("download-jsonl").href = answer.jsonl_url;
  $("download-csv").download = `${base}.predictions.csv`;
  $("download-jsonl").download = `${base}.predictions.jsonl`;
  $("video-summary").textContent = `${summariseTracks(answer)} (model ${answer.model})`;
  const result = $("video-result");
  result.dataset.model = answer.model;
  result.dataset.file = file.name;
  result.hidden = false;
}

function summariseTracks(answer) {
  const counts = new Map();
  for (const record of answer.frames) {
    for (const face of record.faces) {
      const perTrack = counts.get(face.face_id) || new Map();
      perTrack.set(face.label, (perTrack.get(face.label) || 0) + 1);
      counts.set(face.face_id, perTrack);
    }
  }
  if (!counts.size) return "No faces found.";
  return [...counts.entries()].map(([id, labels]) => {
    const [top, n] = [...labels.entries()].sort((a, b) => b[1] - a[1])[0];
    const total = [...labels.values()].reduce((a, b) => a + b, 0);
    return `face #${id}: mostly ${top} (${n} of ${total} frames)`;
  }).join(" · ");
}

// -------------------------------------------------------------------------------------- camera
// Frames go to the server as fast as the camera gives them (at most one waiting in the socket);
// the server drops the ones it cannot keep up with. Every camera frame is drawn at once with the
// newest answer, so the picture moves at the camera's pace whatever the analysis rate. The status
// line is a live region that screen readers read aloud: it changes at most once a second.
const camera = { stream: null, socket: null, frame: 0, latest: null, sent: 0, answers: 0, dropped: 0,
  encoding: false, boxesDrawn: 0, lastSent: 0, sendCanvas: document.createElement("canvas"),
  statusShown: 0, statusTimer: 0, statusUpdates: 0 };
const MAX_SEND_SIDE = 640;
const MAX_SEND_FPS = 30;
const STATUS_EVERY_MS = 1000;

function cameraStatusText() {
  const message = camera.latest;
  if (!message) return "Camera on, waiting for the first answer…";
  return `${message.faces.length} face(s) · ${camera.sent} frames sent, ${camera.answers} analysed, ` +
    `${camera.dropped} skipped to keep up · ${message.ms} ms per frame · model ${camera.model}`;
}

function showCameraStatus() {
  camera.statusTimer = 0;
  camera.statusShown = performance.now();
  camera.statusUpdates += 1;
  const status = $("camera-status");
  status.dataset.updates = String(camera.statusUpdates);
  setStatus(status, cameraStatusText());
}

function scheduleCameraStatus() {
  if (camera.statusTimer) return;
  const wait = Math.max(0, STATUS_EVERY_MS - (performance.now() - camera.statusShown));
  camera.statusTimer = setTimeout(showCameraStatus, wait);
}

async function startCamera() {
  const status = $("camera-status");
  if (!navigator.mediaDevices?.getUserMedia) {
    setStatus(status, "This browser gives no camera access here (a camera needs https or localhost).", true);
    return;
  }
  try {
    camera.stream = await navigator.mediaDevices.getUserMedia({
      video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
  } catch (error) {
    setStatus(status, `No camera could be opened (${error.name === "NotAllowedError" ? "permission denied" :
      "none found or in use"}).`, true);
    return;
  }
  const video = $("camera-video");
  video.srcObject = camera.stream;
  await video.play();
  Object.assign(camera, { latest: null, sent: 0, answers: 0, dropped: 0, boxesDrawn: 0, encoding: false,
    statusUpdates: 0 });
  $("camera-canvas").dataset.boxesDrawn = "0";
  $("camera-canvas").dataset.answers = "0";
  setStatus(status, "Camera on, waiting for the first answer…");
  openSocket();
  $("camera-start").disabled = true;
  $("camera-stop").disabled = false;
  camera.frame = requestAnimationFrame(cameraTick);
}

function openSocket() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  camera.model = state.model;
  const socket = new WebSocket(`${scheme}://${location.host}${withModel("/v1/camera")}`);
  socket.binaryType = "arraybuffer";
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "ready") {
      camera.model = message.model;
    } else if (message.type === "result") {
      camera.latest = message;
      camera.answers += 1;
      camera.dropped = message.dropped;
      $("camera-canvas").dataset.answers = String(camera.answers);
      showFaceCards($("camera-faces"), message.faces);
      scheduleCameraStatus();
    } else if (message.type === "error") {
      setStatus($("camera-status"), plainWords(message.error), true);
    }
  };
  socket.onclose = () => { if (camera.socket === socket) camera.socket = null; };
  camera.socket = socket;
}

function cameraTick(now) {
  if (!camera.stream) return;
  const video = $("camera-video");
  const canvas = $("camera-canvas");
  if (video.videoWidth) {
    if (canvas.width !== video.videoWidth || canvas.height !== video.videoHeight) {
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
    }
    const context = canvas.getContext("2d");
    context.drawImage(video, 0, 0, canvas.width, canvas.height);
    const answer = camera.latest;
    if (answer && answer.faces.length) {
      drawFaces(context, answer.faces, canvas.width / answer.width, canvas.height / answer.height);
      camera.boxesDrawn += 1;
      canvas.dataset.boxesDrawn = String(camera.boxesDrawn);
    }
    sendFrame(video, now);
  }
  camera.frame = requestAnimationFrame(cameraTick);
}

function sendFrame(video, now) {
  const socket = camera.socket;
  if (!socket || socket.readyState !== WebSocket.OPEN || camera.encoding) return;
  if (socket.bufferedAmount > 0 || now - camera.lastSent < 1000 / MAX_SEND_FPS) return;
  const scale = Math.min(1, MAX_SEND_SIDE / Math.max(video.videoWidth, video.videoHeight));
  const target = camera.sendCanvas;
  target.width = Math.round(video.videoWidth * scale);
  target.height = Math.round(video.videoHeight * scale);
  target.getContext("2d").drawImage(video, 0, 0, target.width, target.height);
  camera.encoding = true;
  camera.lastSent = now;
  target.toBlob((blob) => {
    camera.encoding = false;
    if (blob && camera.socket === socket && socket.readyState === WebSocket.OPEN) {
      socket.send(blob);
      camera.sent += 1;
    }
  }, "image/jpeg", 0.85);
}

function stopCamera() {
  if (camera.frame) cancelAnimationFrame(camera.frame);
  camera.frame = 0;
  if (camera.statusTimer) clearTimeout(camera.statusTimer);
  camera.statusTimer = 0;
  const wasOn = Boolean(camera.stream);
  camera.stream?.getTracks().forEach((track) => track.stop());
  camera.stream = null;
  camera.socket?.close();
  camera.socket = null;
  $("camera-start").disabled = false;
  $("camera-stop").disabled = true;
  if (wasOn) setStatus($("camera-status"), "Camera stopped.");
}

function restartCamera() {
  if (camera.stream && camera.socket) {
    camera.socket.close();
    camera.latest = null;
    openSocket();
  }
}

// ------------------------------------------------------------------------------------- wiring
function wireDrop(dropId, inputId, handler) {
  const drop = $(dropId);
  const input = $(inputId);
  input.addEventListener("change", () => { if (input.files.length) handler(input.files[0]); });
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    if (event.dataTransfer.files.length) handler(event.dataTransfer.files[0]);
  });
}

for (const tab of TABS) {
  $(`tab-${tab}`).addEventListener("click", () => showTab(tab));
  $(`tab-${tab}`).addEventListener("keydown", onTabKey);
}
wireDrop("photo-drop", "photo-input", analysePhoto);
wireDrop("video-drop", "video-input", analyseVideo);
$("video-cancel").addEventListener("click", cancelVideo);
$("camera-start").addEventListener("click", startCamera);
$("camera-stop").addEventListener("click", stopCamera);
new ResizeObserver(() => layoutLabels($("photo-overlay"))).observe($("photo-overlay"));
window.addEventListener("pagehide", forgetVideoJob);
loadModels();
