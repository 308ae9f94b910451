// The affectlens page: photo, video and live camera against this server's /v1 API.
// Plain JavaScript, no build step and no outside requests, so the page works offline.

const $ = (id) => document.getElementById(id);

// The same colours as the annotated images and videos (affectlens/inference/annotate.py), as RGB.
const NAMED_COLOURS = {
  angry: [220, 40, 40], anger: [220, 40, 40], disgust: [40, 140, 40], fear: [160, 60, 160],
  happy: [60, 200, 60], happiness: [60, 200, 60], sad: [40, 120, 200], sadness: [40, 120, 200],
  surprise: [240, 200, 0], neutral: [150, 150, 150], contempt: [200, 80, 120],
};
const PALETTE = [[60, 160, 230], [230, 160, 60], [60, 230, 160], [160, 60, 200], [200, 230, 60], [240, 140, 140]];

function colour(label, index) {
  const rgb = NAMED_COLOURS[label.toLowerCase()] || PALETTE[index % PALETTE.length];
  return `rgb(${rgb.join(",")})`;
}

function setStatus(element, text, isError = false) {
  element.textContent = text;
  element.classList.toggle("error", isError);
}

async function errorText(response) {
  try {
    const body = await response.json();
    if (body && body.error) return `${body.error} (HTTP ${response.status})`;
  } catch (_) { /* not JSON */ }
  return `HTTP ${response.status} ${response.statusText}`;
}

// ------------------------------------------------------------------------------------- models
const state = { model: "", classes: [] };

async function loadModels() {
  const select = $("model");
  try {
    const response = await fetch("/v1/models");
    if (!response.ok) throw new Error(await errorText(response));
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
    select.addEventListener("change", () => { showInfo(); restartCamera(); });
    showInfo();
  } catch (error) {
    $("model-info").textContent = `cannot list models: ${error.message}`;
  }
}

function withModel(path, params = {}) {
  const query = new URLSearchParams(params);
  if (state.model) query.set("model", state.model);
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

// ---------------------------------------------------------------------------------------- tabs
function showTab(name) {
  for (const tab of ["photo", "video", "camera"]) {
    $(`tab-${tab}`).setAttribute("aria-selected", String(tab === name));
    $(`${tab}-panel`).hidden = tab !== name;
  }
  if (name !== "camera") stopCamera();
}

// ------------------------------------------------------------------------------- faces drawing
function drawFaces(context, faces, scaleX = 1, scaleY = 1) {
  const size = Math.max(context.canvas.width, context.canvas.height);
  const line = Math.max(2, Math.round(size / 400));
  context.font = `${Math.max(12, Math.round(size / 55))}px system-ui, sans-serif`;
  context.textBaseline = "bottom";
  faces.forEach((face, index) => {
    const [x1, y1, x2, y2] = face.box;
    const x = x1 * scaleX, y = y1 * scaleY, w = (x2 - x1) * scaleX, h = (y2 - y1) * scaleY;
    const classIndex = Object.keys(face.probabilities).indexOf(face.label);
    const stroke = colour(face.label, classIndex < 0 ? index : classIndex);
    context.lineWidth = line;
    context.strokeStyle = stroke;
    context.strokeRect(x, y, w, h);
    const text = `#${face.face_id} ${face.label} ${Math.round(100 * face.probabilities[face.label])}%`;
    const textWidth = context.measureText(text).width;
    const textHeight = parseInt(context.font, 10) + 4;
    const top = y - textHeight >= 0 ? y : y + h + textHeight;
    context.fillStyle = stroke;
    context.fillRect(x, top - textHeight, textWidth + 8, textHeight);
    context.fillStyle = "#000";
    context.fillText(text, x + 4, top - 2);
  });
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

// --------------------------------------------------------------------------------------- photo
async function analysePhoto(file) {
  const status = $("photo-status");
  setStatus(status, `Analysing ${file.name}…`);
  const body = new FormData();
  body.append("file", file, file.name);
  const started = performance.now();
  try {
    const response = await fetch(withModel("/v1/predict"), { method: "POST", body });
    if (!response.ok) throw new Error(await errorText(response));
    const record = await response.json();
    const bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
    const canvas = $("photo-canvas");
    canvas.width = record.width;
    canvas.height = record.height;
    const context = canvas.getContext("2d");
    context.drawImage(bitmap, 0, 0, record.width, record.height);
    drawFaces(context, record.faces);
    showFaceCards($("photo-faces"), record.faces);
    const seconds = ((performance.now() - started) / 1000).toFixed(2);
    const notice = response.headers.get("X-Affectlens-Notice");
    setStatus(status, `${record.faces.length} face${record.faces.length === 1 ? "" : "s"} in ${file.name} ` +
      `(${record.width}×${record.height}, ${seconds} s)` + (notice ? ` — ${notice}` : ""));
  } catch (error) {
    $("photo-faces").replaceChildren();
    setStatus(status, error.message, true);
  }
}

// --------------------------------------------------------------------------------------- video
const downloads = [];

function downloadUrl(text, type) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  downloads.push(url);
  return url;
}

async function analyseVideo(file) {
  const status = $("video-status");
  const every = Math.max(1, parseInt($("video-every").value, 10) || 1);
  const started = performance.now();
  const ticker = setInterval(() => {
    setStatus(status, `Analysing ${file.name}… ${((performance.now() - started) / 1000).toFixed(0)} s`);
  }, 500);
  setStatus(status, `Uploading ${file.name}…`);
  $("video-result").hidden = true;
  downloads.splice(0).forEach((url) => URL.revokeObjectURL(url));
  const body = new FormData();
  body.append("file", file, file.name);
  try {
    const response = await fetch(withModel("/v1/predict/video", { annotate: "true", every: String(every) }),
      { method: "POST", body });
    if (!response.ok) throw new Error(await errorText(response));
    const answer = await response.json();
    const player = $("video-player");
    if (answer.annotated_video) {
      const blob = await (await fetch(answer.annotated_video)).blob();
      const url = URL.createObjectURL(blob);
      downloads.push(url);
      player.src = url;
      player.hidden = false;
    } else {
      player.removeAttribute("src");
      player.hidden = true;
    }
    const timeline = $("video-timeline");
    timeline.hidden = !answer.timeline_png;
    if (answer.timeline_png) timeline.src = answer.timeline_png;
    $("download-csv").href = downloadUrl(answer.csv, "text/csv");
    $("download-jsonl").href = downloadUrl(answer.frames.map((r) => JSON.stringify(r)).join("\n") + "\n",
      "application/x-ndjson");
    const base = file.name.replace(/\.[^.]+$/, "");
    $("download-csv").download = `${base}.predictions.csv`;
    $("download-jsonl").download = `${base}.predictions.jsonl`;
    $("video-summary").textContent = summariseTracks(answer);
    $("video-result").hidden = false;
    setStatus(status, `${answer.frames_analysed} frames analysed, ${answer.tracks.length} face track(s), ` +
      `${((performance.now() - started) / 1000).toFixed(1)} s`);
  } catch (error) {
    setStatus(status, error.message, true);
  } finally {
    clearInterval(ticker);
  }
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
// newest answer, so the picture moves at the camera's pace whatever the analysis rate.
const camera = { stream: null, socket: null, frame: 0, latest: null, sent: 0, answers: 0, dropped: 0,
  encoding: false, boxesDrawn: 0, lastSent: 0, sendCanvas: document.createElement("canvas") };
const MAX_SEND_SIDE = 640;
const MAX_SEND_FPS = 30;

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
    setStatus(status, `No camera: ${error.message}`, true);
    return;
  }
  const video = $("camera-video");
  video.srcObject = camera.stream;
  await video.play();
  Object.assign(camera, { latest: null, sent: 0, answers: 0, dropped: 0, boxesDrawn: 0, encoding: false });
  $("camera-canvas").dataset.boxesDrawn = "0";
  openSocket();
  $("camera-start").disabled = true;
  $("camera-stop").disabled = false;
  camera.frame = requestAnimationFrame(cameraTick);
}

function openSocket() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}${withModel("/v1/camera")}`);
  socket.binaryType = "arraybuffer";
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "result") {
      camera.latest = message;
      camera.answers += 1;
      camera.dropped = message.dropped;
      showFaceCards($("camera-faces"), message.faces);
      setStatus($("camera-status"), `${message.faces.length} face(s) · ${camera.sent} frames sent, ` +
        `${camera.answers} analysed, ${camera.dropped} dropped by the server · ${message.ms} ms per frame`);
    } else if (message.type === "error") {
      setStatus($("camera-status"), message.error, true);
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
  camera.stream?.getTracks().forEach((track) => track.stop());
  camera.stream = null;
  camera.socket?.close();
  camera.socket = null;
  $("camera-start").disabled = false;
  $("camera-stop").disabled = true;
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

for (const tab of ["photo", "video", "camera"]) $(`tab-${tab}`).addEventListener("click", () => showTab(tab));
wireDrop("photo-drop", "photo-input", analysePhoto);
wireDrop("video-drop", "video-input", analyseVideo);
$("camera-start").addEventListener("click", startCamera);
$("camera-stop").addEventListener("click", stopCamera);
loadModels();
