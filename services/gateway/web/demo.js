// The demo app: a mesh video call with chat, built on /sdk/signal.js.
//
// Enter a room and a name, grant the camera, and every participant's video appears
// in the grid. The URL fragment can prefill the form and join at once (used by the
// browser tests and handy for sharing): #room=demo&name=Alice&token=<jwt>&autojoin=1
//
// window.demo exposes the call's state to the browser tests (see the end of the file).

import { MeshRoom, SignalingClient } from '/sdk/signal.js';

const $ = (id) => document.getElementById(id);
const fragment = new URLSearchParams(location.hash.slice(1));
// Fired whenever anything shown on the page changes; the test hooks wait on it.
const changes = new EventTarget();
let changeCount = 0;
const changed = () => {
  changeCount += 1;
  changes.dispatchEvent(new Event('change'));
};
// Page errors, kept for the snapshot so that a failing browser test shows them.
const pageErrors = [];
window.addEventListener('error', (event) => pageErrors.push(String(event.message)));
window.addEventListener('unhandledrejection', (event) => pageErrors.push(String(event.reason)));
const warn = console.warn.bind(console);
console.warn = (...parts) => {
  pageErrors.push(parts.map(String).join(' '));
  warn(...parts);
};

const call = {
  client: null,
  mesh: null,
  stream: null,
  room: null,
  status: 'not connected',
  chat: [], // {from, text}
  departed: [], // {peerId, reason}
  videoFrom: new Set(), // peer ids whose video track arrived
  resumes: [], // {gap} for every resumed connection
  error: null,
};

let devTokens = false;

async function loadConfig() {
  try {
    const config = await (await fetch('/demo/config')).json();
    devTokens = config.dev_tokens;
  } catch {
    devTokens = false;
  }
  $('token-field').hidden = devTokens || Boolean(fragment.get('token'));
  $('dev-note').hidden = !devTokens;
}

/** A token: given in the form or the URL fragment, else (development only) from the gateway. */
async function tokenFor(name, room) {
  const given = $('token').value.trim() || fragment.get('token');
  if (given) return given;
  if (!devTokens) throw new Error("this gateway needs a token from your application's backend");
  const identity = `${name.toLowerCase().replace(/[^a-z0-9]+/g, '-').slice(0, 40) || 'guest'}-${Math.random().toString(36).slice(2, 6)}`;
  const query = new URLSearchParams({ identity, name, room });
  const response = await fetch(`/dev/token?${query}`);
  if (!response.ok) throw new Error(`dev token refused: ${await response.text()}`);
  return (await response.json()).token;
}

async function join(room, name) {
  call.room = room;
  call.stream = await navigator.mediaDevices
    .getUserMedia({ video: true, audio: true })
    .catch((error) => {
      showError(`no camera (${error.message}); joining without one`);
      return null;
    });
  const token = await tokenFor(name, room);
  const url = `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/ws`;
  const client = new SignalingClient(url, { token });
  client.addEventListener('state', ({ detail }) => setStatus(detail));
  client.addEventListener('error', ({ detail }) => pageErrors.push(`server: ${detail.code}: ${detail.message}`));
  client.addEventListener('resumed', ({ detail }) => {
    call.resumes.push({ gap: detail.gap });
    changed();
  });
  await client.connect();
  const mesh = new MeshRoom(client, room, { localStream: call.stream, dataChannels: ['chat'] });
  mesh.addEventListener('peer', ({ detail: link }) => addTile(link.peerId, nameOf(link.remote)));
  mesh.addEventListener('track', ({ detail }) => showTrack(detail.peerId, detail.track, detail.streams));
  mesh.addEventListener('peer_left', ({ detail }) => {
    call.departed.push(detail);
    document.querySelector(`[data-peer="${CSS.escape(detail.peerId)}"]`)?.remove();
    call.videoFrom.delete(detail.peerId);
  });
  mesh.addEventListener('message', ({ detail }) => {
    const link = mesh.links.get(detail.peerId);
    appendChat(link ? nameOf(link.remote) : detail.peerId, detail.data);
  });
  mesh.addEventListener('change', () => render());
  mesh.addEventListener('left', ({ detail }) => detail.reason === 'removed' && showError('you were removed from the room'));
  call.client = client;
  call.mesh = mesh;
  addTile('local', `${name} (you)`, true).querySelector('video').srcObject = call.stream;
  await mesh.join();
  $('join-form').hidden = true;
  $('call').hidden = false;
  render();
}

async function leave() {
  await call.mesh?.leave().catch(() => {});
  call.client?.close();
  call.stream?.getTracks().forEach((track) => track.stop());
  $('grid').replaceChildren();
  $('call').hidden = true;
  $('join-form').hidden = false;
  Object.assign(call, { client: null, mesh: null, stream: null, chat: [], departed: [] });
  call.videoFrom.clear();
  render();
}

function nameOf(peer) {
  return peer.name || peer.identity || peer.peer_id.slice(0, 8);
}

function addTile(peerId, label, local = false) {
  const tile = $('tile').content.firstElementChild.cloneNode(true);
  tile.dataset.peer = peerId;
  tile.classList.toggle('local', local);
  tile.querySelector('.name').textContent = label;
  if (local) tile.querySelector('video').muted = true;
  $('grid').append(tile);
  return tile;
}

function showTrack(peerId, track, streams) {
  const video = document.querySelector(`[data-peer="${CSS.escape(peerId)}"] video`);
  if (!video) return;
  video.srcObject = streams[0] || new MediaStream([track]);
  if (track.kind === 'video') call.videoFrom.add(peerId);
  changed();
}

function render() {
  const links = call.mesh ? [...call.mesh.links.values()] : [];
  $('participants').replaceChildren(
    ...links.map((link) => {
      const item = document.createElement('li');
      item.textContent = `${nameOf(link.remote)} `;
      const badge = document.createElement('span');
      badge.className = `badge ${link.connectionState}`;
      badge.textContent = link.connectionState;
      item.append(badge);
      return item;
    }),
  );
  for (const link of links) {
    const badge = document.querySelector(`[data-peer="${CSS.escape(link.peerId)}"] .state`);
    if (badge) {
      badge.className = `state badge ${link.connectionState}`;
      badge.textContent = link.connectionState;
    }
  }
  changed();
}

function appendChat(from, text) {
  call.chat.push({ from, text });
  const item = document.createElement('li');
  const who = document.createElement('span');
  who.className = 'from';
  who.textContent = from;
  item.append(who, document.createTextNode(text));
  $('chat').append(item);
  $('chat').scrollTop = $('chat').scrollHeight;
  changed();
}

function sendChat(text) {
  if (!call.mesh || !text) return 0;
  const sent = call.mesh.send('chat', text);
  appendChat('you', text);
  return sent;
}

function setStatus(status) {
  call.status = status;
  $('status').textContent = status;
  $('status').className = `badge ${status}`;
  changed();
}

function showError(message) {
  call.error = message;
  $('form-error').textContent = message;
  $('form-error').hidden = false;
  changed();
}

function toggle(kind, button, on, off) {
  const tracks = call.stream ? call.stream.getTracks().filter((track) => track.kind === kind) : [];
  const enabled = !tracks.every((track) => !track.enabled);
  tracks.forEach((track) => (track.enabled = !enabled));
  button.textContent = enabled ? on : off;
  button.classList.toggle('active', enabled);
}

$('join-form').addEventListener('submit', (event) => {
  event.preventDefault();
  $('form-error').hidden = true;
  join($('room').value.trim(), $('name').value.trim()).catch((error) => {
    showError(error.code ? `${error.code}: ${error.message}` : error.message);
    call.client?.close();
  });
});
$('chat-form').addEventListener('submit', (event) => {
  event.preventDefault();
  sendChat($('chat-input').value.trim());
  $('chat-input').value = '';
});
$('mute').addEventListener('click', () => toggle('audio', $('mute'), 'Unmute', 'Mute'));
$('camera').addEventListener('click', () => toggle('video', $('camera'), 'Camera on', 'Camera off'));
$('leave').addEventListener('click', () => leave());

// Test hooks: the browser tests read the call's state and drive the chat through these.
function snapshot() {
  const links = call.mesh ? [...call.mesh.links.values()] : [];
  return {
    status: call.status,
    peerId: call.client ? call.client.peerId : null,
    joined: Boolean(call.mesh && call.mesh.joined),
    error: call.error,
    peers: links.map((link) => ({
      peerId: link.peerId,
      name: nameOf(link.remote),
      connectionState: link.connectionState,
      chatOpen: link.channels.get('chat')?.readyState === 'open',
      video: call.videoFrom.has(link.peerId),
      polite: link.polite,
      signalingState: link.pc.signalingState,
      iceConnectionState: link.pc.iceConnectionState,
      iceGatheringState: link.pc.iceGatheringState,
      negotiation: link.stats,
    })),
    chat: call.chat,
    departed: call.departed,
    resumes: call.resumes,
    changes: changeCount,
    pageErrors,
  };
}

window.demo = {
  snapshot,
  sendChat,
  /** Resolves with the snapshot once `check(snapshot)` holds, or {timeout, snapshot}. */
  waitFor(check, timeoutMs) {
    return new Promise((resolve) => {
      const test = () => {
        const current = snapshot();
        if (!check(current)) return;
        changes.removeEventListener('change', test);
        clearTimeout(timer);
        resolve(current);
      };
      const timer = setTimeout(() => {
        changes.removeEventListener('change', test);
        resolve({ timeout: true, snapshot: snapshot() });
      }, timeoutMs);
      changes.addEventListener('change', test);
      test();
    });
  },
  /** Bytes of video received from a peer so far (inbound-rtp statistics). */
  async videoBytesFrom(peerId) {
    const link = call.mesh && call.mesh.links.get(peerId);
    if (!link) return 0;
    let bytes = 0;
    (await link.pc.getStats()).forEach((report) => {
      if (report.type === 'inbound-rtp' && report.kind === 'video') bytes += report.bytesReceived;
    });
    return bytes;
  },
};

await loadConfig();
if (fragment.get('room')) $('room').value = fragment.get('room');
if (fragment.get('name')) $('name').value = fragment.get('name');
if (fragment.get('autojoin')) $('join-form').requestSubmit();
